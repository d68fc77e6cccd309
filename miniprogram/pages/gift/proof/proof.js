// @ts-check
// The draw recomputed on the phone from the published proof (docs/fairness.md), so nobody has
// to trust the server: the seed against its commitment, the hashes, and the winners.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { QUICKNET, verify } = require('../../../utils/fairness');

const CHECK_TEXT = {
  algorithm: '算法版本', commitment: '种子与开奖前公布的承诺一致', canonical: '参与名单按规则排序',
  participants_hash: '参与名单的哈希一致', items_hash: '奖品清单的哈希一致',
  sequences: '参与编号从 1 连续到总人数', receipt: '你保存的参与回执与名单一致',
  beacon_chain: '随机信标来自 drand quicknet 公共网络', beacon_round: '信标轮次是名单冻结后的第一轮',
  beacon_signature: '信标签名经 BLS 验证属于该轮次', winners: '按公开算法重算的中奖者一致',
};

/** The chain a proof's beacon must come from: quicknet (pinned), or the local stand-in of a
 * development server on this very machine (as the server takes such a chain only from loopback).
 * @param {any} proof
 * @param {any} api */
/** This phone's receipt of its join, held against the proof.
 * @param {any} proof
 * @param {any} api
 * @param {any} wx */
async function receiptCheck(proof, api, wx) {
  const receipt = wx.getStorageSync(`receipt:${proof.order_id}`);
  if (!receipt || proof.version !== 2) return null;
  let signed = false;
  try {
    const key = await api.get('/api/v1/receipt-key', { auth: false });
    signed = require('../../../utils/vendor/drand-verify').verifyReceipt(key.public_key, receipt);
  } catch (err) {
    signed = false; // no BigInt on this phone, or no key: not shown as checked
  }
  const at = proof.participants.indexOf(receipt.participant);
  const ok = signed && receipt.gift === proof.order_id && at >= 0 && proof.sequences[at] === receipt.sequence;
  return { name: 'receipt', ok, detail: `第 ${receipt.sequence} 位参与` };
}

async function chainFor(proof, api) {
  const local = /^http:\/\/(127\.0\.0\.1|localhost)(:\d+)?$/.test(api.base);
  if (proof.version !== 2 || !proof.beacon || proof.beacon.chain_hash === QUICKNET.chain_hash || !local) return QUICKNET;
  const chain = await api.get('/api/v1/beacon', { auth: false });
  return chain.chain_hash === proof.beacon.chain_hash ? chain : QUICKNET;
}

Component({
  behaviors: [pageBehavior],
  data: {
    proof: /** @type {any} */ (null),
    checks: /** @type {{name: string, ok: boolean, text: string}[]} */ ([]),
    matches: false,
    mine: '',
    winners: /** @type {{participant: string, item: string, me: boolean}[]} */ ([]),
  },
  methods: {
    /** @param {{order_id?: string}} query */
    onLoad(query) {
      const id = encodeURIComponent(query.order_id || '');
      this.load(async () => {
        const { api } = ctx(this).services;
        const [proof, gift] = await Promise.all([api.get(`/api/v1/gifts/${id}/proof`, { auth: false }), api.get(`/api/v1/gifts/${id}`)]);
        const all = verify(proof, await chainFor(proof, api));
        const receipt = await receiptCheck(proof, api, ctx(this).services.wx);
        if (receipt) all.push(receipt);
        const checks = all.map((c) => ({ ...c, text: /** @type {Record<string, string>} */ (CHECK_TEXT)[c.name] || c.name }));
        const mine = gift.me.participant || '';
        this.setData({
          proof, checks, matches: checks.length > 1 && checks.every((c) => c.ok), mine,
          winners: proof.winners.map((/** @type {any} */ w) => ({ participant: w.participant, item: proof.items[w.item_index], me: w.participant === mine })),
        });
      });
    },
  },
});
