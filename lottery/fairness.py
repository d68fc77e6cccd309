"""The verifiable draw. Version 1 uses the standard library only; version 2 also checks a drand
round's BLS signature (lottery/drand.py), imported only when a version-2 proof is checked.

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

Version 2 mixes in a public randomness beacon that did not exist when the participant list was
frozen: the round is the first drand round after `frozen_at`, and the stream's key is
HMAC-SHA256(key=seed, msg="gift-lottery/beacon/v2|<round>|<randomness>") instead of the seed
(the label "gift-lottery/draw/v2" in the stream's messages). A draw the operator's policy let go
ahead without the round (`beacon.status` "unavailable", see docs/fairness.md) uses
"gift-lottery/beacon/v2|<round>|unavailable", and says so in its proof.
"""
import hashlib
import hmac
import json
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the BLS check is imported only when a version-2 proof is checked
    from lottery import drand

ALGORITHM = "hmac-sha256-fisher-yates"
VERSION = 2
VERSIONS = (1, 2)  # the versions `verify` checks
_DRAW_LABELS = {1: "gift-lottery/draw/v1", 2: "gift-lottery/draw/v2"}
_BEACON_LABEL = "gift-lottery/beacon/v2"
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


def stream_key(seed_hex: str, beacon: dict | None) -> bytes:
    """The key of the draw's stream: version 1 (no `beacon`), the seed; version 2, the seed mixed
    with the beacon round's randomness (or with the word "unavailable")."""
    if beacon is None:
        return bytes.fromhex(seed_hex)
    mixed = beacon["randomness"] if beacon.get("status") == "verified" else "unavailable"
    return hmac.new(bytes.fromhex(seed_hex), f"{_BEACON_LABEL}|{beacon['round']}|{mixed}".encode(),
                    hashlib.sha256).digest()


def draw(seed_hex: str, order_id: str, sorted_pseudonyms: list[str], item_names: list[str],
         beacon: dict | None = None, tiers: list[list] | None = None) -> list[int]:
    """Positions (in `sorted_pseudonyms`) of the winners; winner i gets item i (items come first
    tier first). `beacon`: a version-2 draw's round (`{round, status, randomness}`); None:
    version 1."""
    count = len(sorted_pseudonyms)
    winners = min(len(item_names), count)
    label = _DRAW_LABELS[1 if beacon is None else 2]
    context = f"{label}|{order_id}|{participants_hash(sorted_pseudonyms)}|{items_hash(item_names, tiers)}"
    stream = _Stream(stream_key(seed_hex, beacon), context)
    # Only the first `winners` slots are shuffled, so a dict stands in for the 100k-long array.
    swapped: dict[int, int] = {}
    chosen = []
    for i in range(winners):
        j = i + stream.uniform(count - i)
        at_i, at_j = swapped.get(i, i), swapped.get(j, j)
        swapped[i], swapped[j] = at_j, at_i
        chosen.append(at_j)
    return chosen


def verify(proof: dict, chain: "drand.Chain | None" = None) -> list[str]:
    """Recompute a published proof; returns the problems found (empty: it matches). A version-2
    proof's beacon round is checked against `chain` (None: drand's quicknet, pinned)."""
    problems = []
    if proof.get("algorithm") != ALGORITHM or proof.get("version") not in VERSIONS:
        return [f"unknown algorithm {proof.get('algorithm')} v{proof.get('version')}"]
    beacon = None
    if proof["version"] == 2:
        beacon = proof["beacon"]
        problems += beacon_problems(beacon, proof["frozen_at"], chain)
        if sorted(proof["sequences"]) != list(range(1, len(proof["participants"]) + 1)):
            problems.append("the join sequence numbers are not 1 to P, each once (a join left out or renumbered)")
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
                for i, p in enumerate(draw(seed, proof["order_id"], participants, proof["items"], beacon, tiers))]
    if expected != proof["winners"]:
        problems.append("the winners are not the ones the seed and participants give")
    return problems


def receipt_problems(proof: dict, receipts: list[dict], public_key_hex: str) -> list[str]:
    """What the receipts members hold say about a version-2 proof: each must be signed by the
    server's receipt key, and its participant must be in the list under its sequence number."""
    from lottery import receipts as signed

    problems = []
    numbers = dict(zip(proof["participants"], proof.get("sequences") or ()))
    for receipt in receipts:
        who = f"receipt {receipt.get('sequence')} of {receipt.get('participant')}"
        if not signed.verify(receipt, public_key_hex):
            problems.append(f"{who}: not signed by the receipt key")
        elif receipt["gift"] != proof["order_id"]:
            problems.append(f"{who}: a receipt of another gift")
        elif receipt["participant"] not in numbers:
            problems.append(f"{who}: the participant was left out of the draw")
        elif numbers[receipt["participant"]] != receipt["sequence"]:
            problems.append(f"{who}: listed under sequence number {numbers[receipt['participant']]}")
    return problems


def beacon_problems(beacon: dict, frozen_at: str, chain: "drand.Chain | None" = None) -> list[str]:
    """What is wrong with a version-2 proof's beacon: the chain, the round's rule (the first round
    after the freeze), the round's signature and randomness."""
    from datetime import datetime

    from lottery import drand

    chain = chain or drand.QUICKNET
    problems = []
    if beacon.get("chain_hash") != chain.chain_hash:
        problems.append(f"the beacon is not the pinned chain {chain.chain_hash}")
    frozen = datetime.fromisoformat(frozen_at.replace("Z", "+00:00")).timestamp()
    if beacon.get("round") != chain.first_round_after(frozen):
        problems.append("the beacon round is not the first round after the participant list was frozen")
    if beacon.get("status") == "unavailable":
        problems.append(f"no beacon: this draw went ahead without its round ({beacon.get('policy')}); "
                        "it is only as strong as a version-1 draw")
    elif beacon.get("status") != "verified" or not drand.verify(chain, beacon.get("round"), beacon.get("signature")):
        problems.append("the beacon signature is not the chain's signature of that round")
    elif drand.randomness(beacon["signature"]) != beacon.get("randomness"):
        problems.append("the beacon randomness is not SHA-256 of its signature")
    return problems
