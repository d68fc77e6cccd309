// @ts-check
// The verifiable draw, versions 1 and 2, recomputed on the phone: the same check as the
// browser's static/js/fairness.js and lottery/fairness.py (docs/fairness.md).
//
// Without BigInt (older iOS JavaScriptCore in WeChat lacks it): a 64-bit number is two 32-bit
// halves. uniform(n) rejects x >= 2^64 - (2^64 mod n), then takes x mod n; n is a participant
// count, far below 2^26, so every product below stays exact in a double.
// A version-2 proof's drand round is a BLS12-381 signature: its check (@noble/curves, vendored
// in ./vendor/, built by tools/js-vendor) needs BigInt; where the phone lacks it, that one check
// says so and fails, and the proof can be checked in a browser or with `python -m lottery.verify`.
const { sha256Hex, hmacSha256, fromHex, utf8 } = require('./sha256');

const ALGORITHM = 'hmac-sha256-fisher-yates';
const VERSIONS = [1, 2];
/** @type {Record<number, string>} */
const DRAW_LABELS = { 1: 'gift-lottery/draw/v1', 2: 'gift-lottery/draw/v2' };
const BEACON_LABEL = 'gift-lottery/beacon/v2';
// drand's League of Entropy `quicknet` chain, pinned.
const QUICKNET = {
  chain_hash: '52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971',
  public_key: '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1'
    + 'fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a',
  genesis: 1692803367,
  period: 3,
};
/** @typedef {{chain_hash: string, public_key: string, genesis: number, period: number}} Chain */
/** @typedef {{chain_hash: string, round: number, status: string, signature?: string, randomness?: string,
 *   policy?: string}} Beacon */

/** The BLS verifier, or null where this engine cannot load it (no BigInt).
 * @returns {{verifyRound: (publicKeyHex: string, round: number, signatureHex: string) => boolean} | null} */
function bls() {
  try {
    return require('./vendor/drand-verify');
  } catch (err) {
    return null;
  }
}

/** The first round of `chain` whose time is strictly after `moment` (unix seconds).
 * @param {Chain} chain
 * @param {number} moment */
function firstRoundAfter(chain, moment) {
  if (moment < chain.genesis) return 1;
  return Math.floor((moment - chain.genesis) / chain.period) + 2;
}

/** The stream's key: the seed (version 1), or the seed mixed with the round's randomness.
 * @param {string} seedHex
 * @param {Beacon | null} beacon */
function streamKey(seedHex, beacon) {
  if (!beacon) return fromHex(seedHex);
  const mixed = beacon.status === 'verified' ? beacon.randomness : 'unavailable';
  return hmacSha256(fromHex(seedHex), utf8(`${BEACON_LABEL}|${beacon.round}|${mixed}`));
}
const TWO_32 = 0x100000000;

/** @param {string} seedHex */
const commitment = (seedHex) => sha256Hex(fromHex(seedHex));
/** @param {string[]} sorted */
const participantsHash = (sorted) => sha256Hex(sorted.join('\n'));
// JSON.stringify of an array of strings is Python's json.dumps(..., ensure_ascii=False,
// separators=(",", ":")) for every name a gift can hold.
// A tiered gift's hash also covers each item's tier [rank, name]; without tiers, the names alone.
/** @param {string[]} names @param {Array<[number, string]> | null} [tiers] */
const itemsHash = (names, tiers = null) => sha256Hex(JSON.stringify(tiers == null ? names : [names, tiers]));

/** @param {string[]} list */
const isCanonical = (list) => list.every((p, i) => i === 0 || list[i - 1] < p);

/** The HMAC stream of 64-bit numbers, as [high, low] 32-bit halves.
 * @param {Uint8Array} key
 * @param {string} context */
function stream(key, context) {
  let counter = 0;
  /** @type {number[][]} */
  let buffer = [];
  function next64() {
    if (!buffer.length) {
      const block = hmacSha256(key, utf8(`${context}|${counter}`));
      counter += 1;
      const view = new DataView(block.buffer);
      buffer = [0, 8, 16, 24].map((at) => [view.getUint32(at), view.getUint32(at + 4)]).reverse();
    }
    return /** @type {number[]} */ (buffer.pop());
  }
  /** @param {number} n */
  function uniform(n) {
    // 2^64 mod n, from 2^32 mod n squared.
    const r32 = TWO_32 % n;
    const r64 = (r32 * r32) % n;
    for (;;) {
      const [high, low] = next64();
      // limit = 2^64 - r64: only numbers whose high half is all ones can reach it.
      const rejected = r64 > 0 && high === TWO_32 - 1 && low >= TWO_32 - r64;
      if (!rejected) return ((high % n) * r32 + (low % n)) % n;
    }
  }
  return { uniform };
}

/** Positions (in `sortedPseudonyms`) of the winners; winner i gets item i.
 * @param {string} seedHex
 * @param {string} orderId
 * @param {string[]} sortedPseudonyms
 * @param {string[]} itemNames
 * @param {Beacon | null} [beacon] a version-2 draw's round; absent: version 1
 * @param {Array<[number, string]> | null} [tiers] each item's tier [rank, name] (tiered gifts only)
 * @returns {number[]} */
function draw(seedHex, orderId, sortedPseudonyms, itemNames, beacon = null, tiers = null) {
  const count = sortedPseudonyms.length;
  const winners = Math.min(itemNames.length, count);
  const label = DRAW_LABELS[beacon ? 2 : 1];
  const context = `${label}|${orderId}|${participantsHash(sortedPseudonyms)}|${itemsHash(itemNames, tiers)}`;
  const numbers = stream(streamKey(seedHex, beacon), context);
  /** @type {Record<number, number>} */
  const swapped = {};
  const at = (/** @type {number} */ i) => (i in swapped ? swapped[i] : i);
  const chosen = [];
  for (let i = 0; i < winners; i += 1) {
    const j = i + numbers.uniform(count - i);
    const atI = at(i);
    const atJ = at(j);
    swapped[i] = atJ;
    swapped[j] = atI;
    chosen.push(atJ);
  }
  return chosen;
}

/**
 * @typedef {{algorithm: string, version: number, order_id: string, seed: string,
 *   seed_commitment: string, participants: string[], participants_hash: string, items: string[],
 *   tiers?: Array<[number, string]> | null, items_hash: string, winners: {participant: string, item_index: number}[],
 *   frozen_at?: string, beacon?: Beacon, sequences?: number[]}} Proof
 * @typedef {{name: string, ok: boolean, detail: string}} Check
 */

/** A version-2 proof's beacon checks: the chain, the round's rule, the signature and randomness.
 * @param {Proof} proof
 * @param {Chain} chain
 * @param {(name: string, ok: boolean, detail?: string) => void} add */
function beaconChecks(proof, chain, add) {
  const beacon = /** @type {Beacon} */ (proof.beacon || {});
  add('beacon_chain', beacon.chain_hash === chain.chain_hash, chain === QUICKNET ? '' : '本地测试信标，不是 drand quicknet');
  const frozen = Date.parse(proof.frozen_at || '') / 1000;
  add('beacon_round', Number.isFinite(frozen) && beacon.round === firstRoundAfter(chain, frozen), `第 ${beacon.round} 轮`);
  if (beacon.status === 'unavailable') {
    add('beacon_signature', false, `未取得信标：${beacon.policy}`);
    return;
  }
  const verifier = bls();
  if (!verifier) {
    add('beacon_signature', false, '此微信版本不支持 BigInt，无法验证信标签名，请在浏览器中验证');
    return;
  }
  const signature = beacon.signature || '';
  const signed = beacon.status === 'verified' && verifier.verifyRound(chain.public_key, beacon.round, signature);
  add('beacon_signature', signed && sha256Hex(fromHex(signature)) === beacon.randomness);
}

/** Recompute a published proof: one entry per check, in the order the page lists them; the
 * proof matches when every check is ok. `chain`: the drand chain a version-2 proof's round
 * must come from (quicknet unless the caller says otherwise).
 * @param {Proof} proof
 * @param {Chain} [chain]
 * @returns {Check[]} */
function verify(proof, chain = QUICKNET) {
  /** @type {Check[]} */
  const checks = [];
  const add = (/** @type {string} */ name, /** @type {boolean} */ ok, detail = '') => checks.push({ name, ok, detail });
  if (proof.algorithm !== ALGORITHM || !VERSIONS.includes(proof.version)) {
    add('algorithm', false, `${proof.algorithm} v${proof.version}`);
    return checks;
  }
  const participants = Array.from(proof.participants || []);
  try {
    add('commitment', commitment(proof.seed) === proof.seed_commitment);
  } catch (err) {
    add('commitment', false, String(err && /** @type {Error} */ (err).message));
    return checks;
  }
  add('canonical', isCanonical(participants));
  add('participants_hash', participantsHash(participants) === proof.participants_hash);
  const tiers = proof.tiers == null ? null : proof.tiers;
  add('items_hash', itemsHash(proof.items, tiers) === proof.items_hash);
  const beacon = proof.version === 2 ? /** @type {Beacon} */ (proof.beacon || {}) : null;
  if (beacon) {
    const numbers = Array.from(proof.sequences || []).sort((a, b) => a - b);
    add('sequences', numbers.length === participants.length && numbers.every((n, i) => n === i + 1));
    beaconChecks(proof, chain, add);
  }
  const positions = draw(proof.seed, proof.order_id, participants, proof.items, beacon, tiers);
  const expected = positions.map((p, i) => ({ participant: participants[p], item_index: i }));
  const published = (proof.winners || []).map((w) => ({ participant: w.participant, item_index: w.item_index }));
  add('winners', JSON.stringify(expected) === JSON.stringify(published));
  return checks;
}

module.exports = { ALGORITHM, VERSIONS, QUICKNET, commitment, participantsHash, itemsHash, firstRoundAfter, draw, verify };
