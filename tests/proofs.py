"""Published proofs and tampered copies of them: one set of forgeries for every checker of a
proof (lottery/fairness.py's `verify`, the browser's static/js/fairness.js; the mini-program's
miniprogram/utils/fairness.js forges the same in its own jest spec, 04-proof.test.js)."""
import copy

from lottery import fairness


def make_proof(seed_hex: str, members: list[str], items: list[str], order_id: str = "o1") -> dict:
    """The proof of a real draw: `members` join the gift `order_id`, its seed is `seed_hex`."""
    participants = sorted(fairness.pseudonym(order_id, m) for m in members)
    positions = fairness.draw(seed_hex, order_id, participants, items)
    return {"algorithm": fairness.ALGORITHM, "version": 1, "order_id": order_id,
            "seed_commitment": fairness.commitment(seed_hex), "seed": seed_hex,
            "participants": participants, "participants_hash": fairness.participants_hash(participants),
            "items": items, "items_hash": fairness.items_hash(items),
            "winners": [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)]}


def consistent(proof: dict) -> dict:
    """Recompute the hashes and winners over the proof's (possibly tampered) lists, as a forger
    who controls them would, so only the rule under test can catch the forgery."""
    participants, items = proof["participants"], proof["items"]
    proof["participants_hash"] = fairness.participants_hash(participants)
    proof["items_hash"] = fairness.items_hash(items)
    positions = fairness.draw(proof["seed"], proof["order_id"], participants, items)
    proof["winners"] = [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)]
    return proof


# A fixed draw (10 members, 3 items), so each forgery fails exactly the checks listed for it.
SEED = "5f0c8a1e6d2b47c39e8f1a0b2c3d4e5f60718293a4b5c6d7e8f9012345678901"
OTHER_SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def tampered() -> dict[str, tuple[dict, set[str]]]:
    """Forgeries of one real proof, by name: (the forged proof, the checks of the browser's and
    the mini-program's verify that fail on it). Every one must be refused by every checker."""
    proof = make_proof(SEED, [f"m{i}" for i in range(10)], ["A", "B", "C"])
    winners = [w["participant"] for w in proof["winners"]]
    outsider = next(p for p in proof["participants"] if p not in winners)

    def forged(change) -> dict:
        copied = copy.deepcopy(proof)
        change(copied)
        return copied

    def swap_participants(p: dict) -> None:
        p["winners"][0]["participant"], p["winners"][1]["participant"] = winners[1], winners[0]

    def swap_items(p: dict) -> None:
        p["winners"][0]["item_index"], p["winners"][1]["item_index"] = 1, 0

    def doubled(p: dict) -> None:
        p["participants"] = sorted(p["participants"] + [winners[0]])
        consistent(p)

    def unsorted(p: dict) -> None:
        p["participants"] = list(reversed(p["participants"]))
        consistent(p)

    def intruder(p: dict) -> None:
        p["participants"][p["participants"].index(outsider)] = fairness.pseudonym("o1", "intruder")
        p["participants"].sort()

    def reseeded(p: dict) -> None:  # the commitment was published before the draw: it stays
        p["seed"] = OTHER_SEED
        consistent(p)

    return {
        "winners who swapped items": (forged(swap_participants), {"winners"}),
        "items swapped between winners": (forged(swap_items), {"winners"}),
        "winners reordered": (forged(lambda p: p["winners"].reverse()), {"winners"}),
        "a winner replaced by a participant who lost": (
            forged(lambda p: p["winners"][0].update(participant=outsider)), {"winners"}),
        "a winner left out": (forged(lambda p: p["winners"].pop()), {"winners"}),
        "a participant listed twice, hashes and winners recomputed": (forged(doubled), {"canonical"}),
        "an unsorted participant list, hashes and winners recomputed": (forged(unsorted), {"canonical"}),
        "a participant replaced": (forged(intruder), {"participants_hash", "winners"}),
        "a participant removed": (forged(lambda p: p["participants"].remove(outsider)),
                                  {"participants_hash", "winners"}),
        "another seed": (forged(lambda p: p.update(seed=OTHER_SEED)), {"commitment", "winners"}),
        "another seed, winners recomputed": (forged(reseeded), {"commitment"}),
        "another commitment": (forged(lambda p: p.update(seed_commitment=fairness.commitment(OTHER_SEED))),
                               {"commitment"}),
        "an item renamed": (forged(lambda p: p["items"].__setitem__(2, "D")), {"items_hash", "winners"}),
        "another algorithm": (forged(lambda p: p.update(algorithm="other")), {"algorithm"}),
        "another version": (forged(lambda p: p.update(version=fairness.VERSION + 1)), {"algorithm"}),
    }
