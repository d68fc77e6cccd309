// The verifiable draw, version 1, recomputed in the browser with WebCrypto, so nobody has
// to trust the server. A line-for-line port of lottery/fairness.py (see docs/fairness.md):
//
// - participants_hash = SHA-256 of the sorted pseudonyms joined by "\n" (hex)
// - items_hash = SHA-256 of the item names as compact JSON (hex)
// - block i = HMAC-SHA256(key=seed, "gift-lottery/draw/v1|<order_id>|<participants_hash>|
//   <items_hash>|<i>"), read as four 64-bit big-endian integers
// - uniform(n): rejection sampling (x < 2^64 - 2^64 % n, then x % n)
// - a partial Fisher-Yates shuffle of [0, P) for min(items, P) steps; item i goes to the
//   participant at position i.

export const ALGORITHM = 'hmac-sha256-fisher-yates';
export const VERSION = 1;
const DRAW_LABEL = 'gift-lottery/draw/v1';
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

// Positions (in `sortedPseudonyms`) of the winners; winner i gets item i.
export async function draw(seedHex, orderId, sortedPseudonyms, itemNames, tiers = null) {
  const count = sortedPseudonyms.length;
  const winners = Math.min(itemNames.length, count);
  const context = `${DRAW_LABEL}|${orderId}|${await participantsHash(sortedPseudonyms)}|${await itemsHash(itemNames, tiers)}`;
  const key = await crypto.subtle.importKey('raw', fromHex(seedHex), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const stream = new Stream(key, context);
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

// Recompute a published proof. Returns one entry per check: {name, ok, detail}, in the order
// the page lists them; the proof matches when every check is ok.
export async function verify(proof) {
  const checks = [];
  const add = (name, ok, detail = '') => checks.push({ name, ok, detail });
  if (proof.algorithm !== ALGORITHM || proof.version !== VERSION) {
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
  const positions = await draw(proof.seed, proof.order_id, participants, proof.items, tiers);
  const expected = positions.map((p, i) => ({ participant: participants[p], item_index: i }));
  const published = (proof.winners || []).map((w) => ({ participant: w.participant, item_index: w.item_index }));
  add('winners', JSON.stringify(expected) === JSON.stringify(published));
  return checks;
}
