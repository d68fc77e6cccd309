"""The verifiable draw, version 1. Standard library only, so anyone can rerun it.

Inputs: the secret 32-byte seed (committed to by SHA-256 when the gift was created), the
gift's order id, its participants (pseudonyms, sorted) and its item names (in order).

- pseudonym(member) = first 20 hex of SHA-256("gift-lottery/participant/v1|<order_id>|<member_id>")
- participants_hash = SHA-256 of the sorted pseudonyms joined by "\\n" (hex)
- items_hash = SHA-256 of the item names as compact JSON (hex); a gift whose items carry prize
  tiers hashes `[names, tiers]` instead, tiers being `[rank, name]` per item (the proof then has
  `tiers`); a gift without tiers hashes exactly as before
- random stream: block i = HMAC-SHA256(key=seed, msg="gift-lottery/draw/v1|<order_id>|
  <participants_hash>|<items_hash>|<i>"), read as four 64-bit big-endian integers each
- uniform(n): rejection sampling on that stream (x < 2**64 - 2**64 % n, then x % n)
- a partial Fisher-Yates shuffle of [0, P) for k = min(items, P) steps; item i goes to the
  participant at position i.
"""
import hashlib
import hmac
import json
import struct

ALGORITHM = "hmac-sha256-fisher-yates"
VERSION = 1
_DRAW_LABEL = "gift-lottery/draw/v1"
_PSEUDONYM_LABEL = "gift-lottery/participant/v1"


def commitment(seed_hex: str) -> str:
    """SHA-256 of the seed bytes, published before anyone joins."""
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def pseudonym(order_id: str, member_id: str) -> str:
    """A participant's stable name in this gift's proof; reveals nothing of the member id."""
    return hashlib.sha256(f"{_PSEUDONYM_LABEL}|{order_id}|{member_id}".encode()).hexdigest()[:20]


def participants_hash(sorted_pseudonyms: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted_pseudonyms).encode()).hexdigest()


def items_hash(item_names: list[str], tiers: list[list] | None = None) -> str:
    """The item names, and (tiered gifts only) each item's tier `[rank, name]`, as compact JSON."""
    covered: list = item_names if tiers is None else [item_names, tiers]
    return hashlib.sha256(json.dumps(covered, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


class _Stream:
    """Uniform integers from HMAC-SHA256(seed, label | counter)."""

    def __init__(self, seed: bytes, context: str) -> None:
        self.seed = seed
        self.context = context
        self.counter = 0
        self.buffer: list[int] = []

    def _next64(self) -> int:
        if not self.buffer:
            block = hmac.new(self.seed, f"{self.context}|{self.counter}".encode(), hashlib.sha256).digest()
            self.counter += 1
            self.buffer = list(struct.unpack(">4Q", block))[::-1]
        return self.buffer.pop()

    def uniform(self, n: int) -> int:
        limit = 2**64 - (2**64 % n)
        while True:
            x = self._next64()
            if x < limit:
                return x % n


def draw(seed_hex: str, order_id: str, sorted_pseudonyms: list[str], item_names: list[str],
         tiers: list[list] | None = None) -> list[int]:
    """Positions (in `sorted_pseudonyms`) of the winners; winner i gets item i (items come first
    tier first)."""
    count = len(sorted_pseudonyms)
    winners = min(len(item_names), count)
    context = f"{_DRAW_LABEL}|{order_id}|{participants_hash(sorted_pseudonyms)}|{items_hash(item_names, tiers)}"
    stream = _Stream(bytes.fromhex(seed_hex), context)
    # Only the first `winners` slots are shuffled, so a dict stands in for the 100k-long array.
    swapped: dict[int, int] = {}
    chosen = []
    for i in range(winners):
        j = i + stream.uniform(count - i)
        at_i, at_j = swapped.get(i, i), swapped.get(j, j)
        swapped[i], swapped[j] = at_j, at_i
        chosen.append(at_j)
    return chosen


def verify(proof: dict) -> list[str]:
    """Recompute a published proof; returns the problems found (empty: it matches)."""
    problems = []
    if proof.get("algorithm") != ALGORITHM or proof.get("version") != VERSION:
        return [f"unknown algorithm {proof.get('algorithm')} v{proof.get('version')}"]
    seed, participants = proof["seed"], list(proof["participants"])
    if commitment(seed) != proof["seed_commitment"]:
        problems.append("the seed does not match the published commitment")
    if participants != sorted(participants) or len(set(participants)) != len(participants):
        problems.append("the participant list is not in canonical (sorted, distinct) order")
    if participants_hash(participants) != proof["participants_hash"]:
        problems.append("the participant list does not match its hash")
    tiers = proof.get("tiers")
    if tiers is not None and [t[0] for t in tiers] != sorted(t[0] for t in tiers):
        problems.append("the items are not in tier order (first tier first)")
    if items_hash(proof["items"], tiers) != proof["items_hash"]:
        problems.append("the item list does not match its hash")
    expected = [{"participant": participants[p], "item_index": i}
                for i, p in enumerate(draw(seed, proof["order_id"], participants, proof["items"], tiers))]
    if expected != proof["winners"]:
        problems.append("the winners are not the ones the seed and participants give")
    return problems
