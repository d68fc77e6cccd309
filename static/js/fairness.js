// The verifiable draw, versions 1 and 2, recomputed in the browser with WebCrypto (and, for a
// version-2 proof's drand round, BLS12-381 from @noble/curves, vendored in ./vendor/), so nobody
// has to trust the server. A line-for-line port of lottery/fairness.py (see docs/fairness.md):
//
// - participants_hash = SHA-256 of the sorted pseudonyms joined by "\n" (hex)
// - items_hash = SHA-256 of the item names as compact JSON (hex)
// - block i = HMAC-SHA256(key=seed, "gift-lottery/draw/v1|<order_id>|<participants_hash>|
//   <items_hash>|<i>"), read as four 64-bit big-endian integers
// - uniform(n): rejection sampling (x < 2^64 - 2^64 % n, then x % n)
// - a partial Fisher-Yates shuffle of [0, P) for min(items, P) steps; item i goes to the
//   participant at position i.
// - version 2: the round is the first drand round after `frozen_at`; the stream's key is
//   HMAC-SHA256(key=seed, "gift-lottery/beacon/v2|<round>|<randomness>") and its label
//   "gift-lottery/draw/v2".
import { verifyRound } from './vendor/drand-verify.js';

export const ALGORITHM = 'hmac-sha256-fisher-yates';
export const VERSIONS = [1, 2];
const DRAW_LABELS = { 1: 'gift-lottery/draw/v1', 2: 'gift-lottery/draw/v2' };
const BEACON_LABEL = 'gift-lottery/beacon/v2';
// drand's League of Entropy `quicknet` chain, pinned: a proof naming another chain is refused
// (except a development stand-in the caller passes in, see gift-page.js).
export const QUICKNET = {
  chain_hash: '52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971',
  public_key: '83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1'
    + 'fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a',
  genesis: 1692803367,
  period: 3,
};
const TWO_64 = 1n << 64n;
const encoder = new TextEncoder();

const toHex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw new Error('seed is not hex');
  return new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
}

export async function sha256Hex(data) {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.digest('SHA-256', bytes));
}

export const commitment = (seedHex) => sha256Hex(fromHex(seedHex));
export const participantsHash = (sorted) => sha256Hex(sorted.join('\n'));
// JSON.stringify of an array of strings is Python's json.dumps(..., ensure_ascii=False,
// separators=(",", ":")) for every name a gift can hold.
// A tiered gift's hash also covers each item's tier [rank, name]; without tiers, the names alone.
export const itemsHash = (names, tiers = null) => sha256Hex(JSON.stringify(tiers == null ? names : [names, tiers]));

// Python's sorted() on str compares code points; JS's default sort compares UTF-16 units,
// which agrees for the hex pseudonyms used here.
const isCanonical = (list) => list.every((p, i) => i === 0 || list[i - 1] < p);

class Stream {
  constructor(key, context) {
    this.key = key;
    this.context = context;
    this.counter = 0;
    this.buffer = [];
  }

  async next64() {
    if (!this.buffer.length) {
      const message = encoder.encode(`${this.context}|${this.counter}`);
      this.counter += 1;
      const view = new DataView(await crypto.subtle.sign('HMAC', this.key, message));
      this.buffer = [0, 8, 16, 24].map((at) => view.getBigUint64(at, false)).reverse();
    }
    return this.buffer.pop();
  }

  async uniform(n) {
    const size = BigInt(n);
    const limit = TWO_64 - (TWO_64 % size);
    for (;;) {
      const x = await this.next64();
      if (x < limit) return Number(x % size);
    }
  }
}

const hmacKey = (bytes) => crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);

// The stream's key: the seed (version 1, no beacon), or the seed mixed with the round's randomness.
async function streamKey(seedHex, beacon) {
  if (!beacon) return fromHex(seedHex);
  const mixed = beacon.status === 'verified' ? beacon.randomness : 'unavailable';
  const message = encoder.encode(`${BEACON_LABEL}|${beacon.round}|${mixed}`);
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(fromHex(seedHex)), message));
}

// The first round of `chain` whose time is strictly after `moment` (unix seconds).
export function firstRoundAfter(chain, moment) {
  if (moment < chain.genesis) return 1;
  return Math.floor((moment - chain.genesis) / chain.period) + 2;
}

// Positions (in `sortedPseudonyms`) of the winners; winner i gets item i. `beacon`: a
// version-2 draw's round ({round, status, randomness}); absent: version 1. `tiers`: each item's
// [rank, name] (tiered gifts only; items come first tier first).
export async function draw(seedHex, orderId, sortedPseudonyms, itemNames, beacon = null, tiers = null) {
  const count = sortedPseudonyms.length;
  const winners = Math.min(itemNames.length, count);
  const label = DRAW_LABELS[beacon ? 2 : 1];
  const context = `${label}|${orderId}|${await participantsHash(sortedPseudonyms)}|${await itemsHash(itemNames, tiers)}`;
  const stream = new Stream(await hmacKey(await streamKey(seedHex, beacon)), context);
  const swapped = new Map();
  const chosen = [];
  for (let i = 0; i < winners; i += 1) {
    const j = i + await stream.uniform(count - i);
    const atI = swapped.has(i) ? swapped.get(i) : i;
    const atJ = swapped.has(j) ? swapped.get(j) : j;
    swapped.set(i, atJ);
    swapped.set(j, atI);
    chosen.push(atJ);
  }
  return chosen;
}

// A version-2 proof's beacon checks: the chain, the round's rule, the signature and randomness.
async function beaconChecks(proof, chain, add) {
  const beacon = proof.beacon || {};
  add('beacon_chain', beacon.chain_hash === chain.chain_hash, chain === QUICKNET ? '' : '本地测试信标，不是 drand quicknet');
  const frozen = Date.parse(proof.frozen_at) / 1000;
  add('beacon_round', Number.isFinite(frozen) && beacon.round === firstRoundAfter(chain, frozen), `第 ${beacon.round} 轮`);
  if (beacon.status === 'unavailable') {
    add('beacon_signature', false, `未取得信标：${beacon.policy}`);
    return;
  }
  const signed = beacon.status === 'verified' && verifyRound(chain.public_key, beacon.round, beacon.signature);
  add('beacon_signature', signed && (await sha256Hex(fromHex(beacon.signature))) === beacon.randomness);
}

// Recompute a published proof. Returns one entry per check: {name, ok, detail}, in the order
// the page lists them; the proof matches when every check is ok. `chain`: the drand chain a
// version-2 proof's round must come from (quicknet unless the caller says otherwise).
export async function verify(proof, chain = QUICKNET) {
  const checks = [];
  const add = (name, ok, detail = '') => checks.push({ name, ok, detail });
  if (proof.algorithm !== ALGORITHM || !VERSIONS.includes(proof.version)) {
    add('algorithm', false, `${proof.algorithm} v${proof.version}`);
    return checks;
  }
  const participants = Array.from(proof.participants || []);
  try {
    add('commitment', (await commitment(proof.seed)) === proof.seed_commitment);
  } catch (err) {
    add('commitment', false, err.message);
    return checks;
  }
  add('canonical', isCanonical(participants));
  add('participants_hash', (await participantsHash(participants)) === proof.participants_hash);
  const tiers = proof.tiers == null ? null : proof.tiers;
  add('items_hash', (await itemsHash(proof.items, tiers)) === proof.items_hash);
  const beacon = proof.version === 2 ? (proof.beacon || {}) : null;
  if (beacon) {
    const numbers = Array.from(proof.sequences || []).sort((a, b) => a - b);
    add('sequences', numbers.length === participants.length && numbers.every((n, i) => n === i + 1));
    await beaconChecks(proof, chain, add);
  }
  const positions = await draw(proof.seed, proof.order_id, participants, proof.items, beacon, tiers);
  const expected = positions.map((p, i) => ({ participant: participants[p], item_index: i }));
  const published = (proof.winners || []).map((w) => ({ participant: w.participant, item_index: w.item_index }));
  add('winners', JSON.stringify(expected) === JSON.stringify(published));
  return checks;
}
