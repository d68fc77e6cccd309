// @ts-check
// The draw recomputed on the phone from the published proof (docs/fairness.md), so nobody has
// to trust the server: the seed against its commitment, the hashes, and the winners.
const { pageBehavior, ctx } = require('../../../behaviors/page');
const { verify } = require('../../../utils/fairness');

const CHECK_TEXT = {
  algorithm: '算法版本', commitment: '种子与开奖前公布的承诺一致', canonical: '参与名单按规则排序',
  participants_hash: '参与名单的哈希一致', items_hash: '奖品清单的哈希一致', winners: '按公开算法重算的中奖者一致',
};

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
        const checks = verify(proof).map((c) => ({ ...c, text: /** @type {Record<string, string>} */ (CHECK_TEXT)[c.name] || c.name }));
        const mine = gift.me.participant || '';
        this.setData({
          proof, checks, matches: checks.length > 1 && checks.every((c) => c.ok), mine,
          winners: proof.winners.map((/** @type {any} */ w) => ({ participant: w.participant, item: proof.items[w.item_index], me: w.participant === mine })),
        });
      });
    },
  },
});
