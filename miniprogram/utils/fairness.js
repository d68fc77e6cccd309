// @ts-check
// The verifiable draw, version 1, recomputed on the phone: the same check as the browser's
// static/js/fairness.js and lottery/fairness.py (docs/fairness.md).
//
// Without BigInt (older iOS JavaScriptCore in WeChat lacks it): a 64-bit number is two 32-bit
// halves. uniform(n) rejects x >= 2^64 - (2^64 mod n), then takes x mod n; n is a participant
// count, far below 2^26, so every product below stays exact in a double.
const { sha256Hex, hmacSha256, fromHex, utf8 } = require('./sha256');

const ALGORITHM = 'hmac-sha256-fisher-yates';
const VERSION = 1;
const DRAW_LABEL = 'gift-lottery/draw/v1';
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
 * @param {Array<[number, string]> | null} [tiers] each item's tier [rank, name] (tiered gifts only)
 * @returns {number[]} */
function draw(seedHex, orderId, sortedPseudonyms, itemNames, tiers = null) {
  const count = sortedPseudonyms.length;
  const winners = Math.min(itemNames.length, count);
  const context = `${DRAW_LABEL}|${orderId}|${participantsHash(sortedPseudonyms)}|${itemsHash(itemNames, tiers)}`;
  const numbers = stream(fromHex(seedHex), context);
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
 *   tiers?: Array<[number, string]> | null, items_hash: string, winners: {participant: string, item_index: number}[]}} Proof
 * @typedef {{name: string, ok: boolean, detail: string}} Check
 */

/** Recompute a published proof: one entry per check, in the order the page lists them; the
 * proof matches when every check is ok.
 * @param {Proof} proof
 * @returns {Check[]} */
function verify(proof) {
  /** @type {Check[]} */
  const checks = [];
  const add = (/** @type {string} */ name, /** @type {boolean} */ ok, detail = '') => checks.push({ name, ok, detail });
  if (proof.algorithm !== ALGORITHM || proof.version !== VERSION) {
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
  const positions = draw(proof.seed, proof.order_id, participants, proof.items, tiers);
  const expected = positions.map((p, i) => ({ participant: participants[p], item_index: i }));
  const published = (proof.winners || []).map((w) => ({ participant: w.participant, item_index: w.item_index }));
  add('winners', JSON.stringify(expected) === JSON.stringify(published));
  return checks;
}

module.exports = { ALGORITHM, VERSION, commitment, participantsHash, itemsHash, draw, verify };
