"""Published proofs and tampered copies of them: one set of forgeries for every checker of a
proof (lottery/fairness.py's `verify`, the browser's static/js/fairness.js; the mini-program's
miniprogram/utils/fairness.js forges the same in its own jest spec, 04-proof.test.js)."""
import copy

from lottery import drand, fairness


def make_proof(seed_hex: str, members: list[str], items: list[str], order_id: str = "o1",
               beacon: dict | None = None, frozen_at: str | None = None, tiers: list[list] | None = None) -> dict:
    """The proof of a real draw: `members` join the gift `order_id`, its seed is `seed_hex`;
    version 2 with a `beacon` round (and the freeze's time), version 1 without (`tiers`: each
    item's [rank, name], for a tiered gift)."""
    participants = sorted(fairness.pseudonym(order_id, m) for m in members)
    positions = fairness.draw(seed_hex, order_id, participants, items, beacon, tiers)
    proof = {"algorithm": fairness.ALGORITHM, "version": 2 if beacon else 1, "order_id": order_id,
             "seed_commitment": fairness.commitment(seed_hex), "seed": seed_hex,
             "participants": participants, "participants_hash": fairness.participants_hash(participants),
             "items": items, "items_hash": fairness.items_hash(items, tiers),
             "winners": [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)],
             **({"tiers": tiers} if tiers is not None else {})}
    if beacon:  # join sequence numbers in member order (m0 joined first)
        numbers = {fairness.pseudonym(order_id, m): n for n, m in enumerate(members, 1)}
        proof.update(frozen_at=frozen_at, beacon=beacon, sequences=[numbers[p] for p in participants])
    return proof


# drand quicknet rounds as its relays served them (tests/lottery/test_drand.py says where from).
QUICKNET_ROUND_2 = "b6b6a585449b66eb12e875b64fcbab3799861a00e4dbf092d99e969a5eac57dd3f798acf61e705fe4f093db926626807"
QUICKNET_ROUND_3 = "b3fab6df720b68cc47175f2c777e86d84187caab5770906f515ff1099cb01e4deaa027075d860823e49477b93c72bd64"
# Between round 2 (1692803370) and round 3 (1692803373): round 3 is the first after it.
FROZEN_BEFORE_ROUND_3 = "2023-08-23T15:09:31.250Z"


def quicknet_beacon(round_: int = 3, signature: str = QUICKNET_ROUND_3) -> dict:
    return {"chain_hash": drand.QUICKNET.chain_hash, "round": round_, "status": "verified", "signature": signature,
            "randomness": drand.randomness(signature)}


def make_v2_proof() -> dict:
    """A version-2 proof over the real quicknet round 3 (10 members, 3 items)."""
    return make_proof(SEED, [f"m{i}" for i in range(10)], ["A", "B", "C"], order_id="o2",
                      beacon=quicknet_beacon(), frozen_at=FROZEN_BEFORE_ROUND_3)


def consistent(proof: dict) -> dict:
    """Recompute the hashes and winners over the proof's (possibly tampered) lists, as a forger
    who controls them would, so only the rule under test can catch the forgery."""
    participants, items = proof["participants"], proof["items"]
    proof["participants_hash"] = fairness.participants_hash(participants)
    proof["items_hash"] = fairness.items_hash(items, proof.get("tiers"))
    positions = fairness.draw(proof["seed"], proof["order_id"], participants, items, proof.get("beacon"),
                              proof.get("tiers"))
    proof["winners"] = [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)]
    return proof


# A fixed draw (10 members, 3 items), so each forgery fails exactly the checks listed for it.
SEED = "5f0c8a1e6d2b47c39e8f1a0b2c3d4e5f60718293a4b5c6d7e8f9012345678901"
OTHER_SEED = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def tampered() -> dict[str, tuple[dict, set[str]]]:
    """Forgeries of one real proof of each version, by name: (the forged proof, the checks of the
    browser's and the mini-program's verify that fail on it). Every one must be refused by every
    checker."""
    proof = make_proof(SEED, [f"m{i}" for i in range(10)], ["A", "B", "C"])
    tiered = make_proof(SEED, [f"m{i}" for i in range(10)], ["A", "B", "C"], tiers=TIERS)
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
        "a tiered proof with a tier renamed": (
            retiered(tiered, lambda t: t[0].__setitem__(1, "特等奖")), {"items_hash", "winners"}),
        "a tiered proof without its tiers": (retiered(tiered, lambda t: t.clear()), {"items_hash", "winners"}),
        "an untiered proof given tiers": (forged(lambda p: p.update(tiers=copy.deepcopy(TIERS))),
                                          {"items_hash", "winners"}),
        **tampered_beacon(),
    }


def tampered_beacon() -> dict[str, tuple[dict, set[str]]]:
    """Forgeries of a version-2 proof's beacon, by name, each made consistent (hashes and winners
    recomputed) so only the beacon's checks can catch it: (the forged proof, the checks that fail)."""
    def forged(change) -> dict:
        copied = make_v2_proof()
        change(copied)
        return consistent(copied)

    def flipped(p: dict) -> None:
        signature = bytearray(bytes.fromhex(QUICKNET_ROUND_3))
        signature[10] ^= 0x04
        p["beacon"] = quicknet_beacon(3, signature.hex())

    seed_only = make_v2_proof()  # winners of the seed alone, as version 1 draws them
    positions = fairness.draw(seed_only["seed"], seed_only["order_id"], seed_only["participants"], seed_only["items"])
    seed_only["winners"] = [{"participant": seed_only["participants"][i], "item_index": n}
                            for n, i in enumerate(positions)]

    def left_out_first(p: dict) -> None:
        first = p["sequences"].index(1)
        del p["participants"][first], p["sequences"][first]

    return {
        "round 2's signature as round 3's": (forged(lambda p: p.update(beacon=quicknet_beacon(3, QUICKNET_ROUND_2))),
                                             {"beacon_signature"}),
        "a flipped bit in the signature": (forged(flipped), {"beacon_signature"}),
        "randomness not from the signature": (
            forged(lambda p: p["beacon"].update(randomness="11" * 32)), {"beacon_signature"}),
        "a round that was out before the freeze": (
            forged(lambda p: p.update(beacon=quicknet_beacon(2, QUICKNET_ROUND_2))), {"beacon_round"}),
        "frozen after its round": (forged(lambda p: p.update(frozen_at="2023-08-23T15:09:33.000Z")),
                                   {"beacon_round"}),
        "another chain": (forged(lambda p: p["beacon"].update(chain_hash="00" * 32)), {"beacon_chain"}),
        "no beacon, as an operator's policy would say": (
            forged(lambda p: p["beacon"].update(status="unavailable", policy="never")), {"beacon_signature"}),
        "winners of the seed alone": (seed_only, {"winners"}),
        "a join renumbered": (forged(lambda p: p["sequences"].__setitem__(0, 11)), {"sequences"}),
        "the first join left out, numbers kept": (forged(left_out_first), {"sequences"}),
    }


TIERS = [[1, "一等奖"], [2, "二等奖"], [2, "二等奖"]]


def retiered(proof: dict, change) -> dict:
    """A copy of a tiered proof whose tiers were changed (emptied: the key removed)."""
    copied = copy.deepcopy(proof)
    change(copied["tiers"])
    if not copied["tiers"]:
        del copied["tiers"]
    return copied
