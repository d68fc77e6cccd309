"""The draw is uniform, deterministic given its inputs, and checkable by anyone."""
import copy
import hashlib
import json
import os
import subprocess
import sys

from lottery import fairness
from tests.proofs import consistent, make_proof, make_v2_proof, quicknet_beacon, tampered

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def seed(i: int) -> str:
    return hashlib.sha256(f"test-seed-{i}".encode()).hexdigest()


def chi_square(observed: list[int], expected: float) -> float:
    return sum((o - expected) ** 2 / expected for o in observed)


def test_every_participant_wins_with_the_expected_frequency():
    # 6 participants, 2 items, 6,000 draws with fixed seeds: each wins 2,000 times on average.
    participants = sorted(fairness.pseudonym("g", f"m{i}") for i in range(6))
    wins = [0] * 6
    first_item = [0] * 6
    for i in range(6000):
        chosen = fairness.draw(seed(i), "g", participants, ["A", "B"])
        assert len(set(chosen)) == 2
        for position in chosen:
            wins[position] += 1
        first_item[chosen[0]] += 1
    # Chi-square, 5 degrees of freedom, significance 0.001: critical value 20.515.
    assert chi_square(wins, 2000) < 20.515, wins
    assert chi_square(first_item, 1000) < 20.515, first_item


def test_winners_are_distinct_and_capped_by_items_and_participants():
    participants = sorted(fairness.pseudonym("g", f"m{i}") for i in range(10))
    assert len(set(fairness.draw(seed(1), "g", participants, ["x"] * 4))) == 4
    assert sorted(fairness.draw(seed(1), "g", participants, ["x"] * 30)) == list(range(10))
    assert fairness.draw(seed(1), "g", [], ["x"]) == []


def test_same_inputs_same_winners_and_any_input_changes_them():
    participants = sorted(fairness.pseudonym("g", f"m{i}") for i in range(50))
    base = fairness.draw(seed(7), "g", participants, ["a", "b", "c"])
    assert base == fairness.draw(seed(7), "g", participants, ["a", "b", "c"])
    assert base != fairness.draw(seed(8), "g", participants, ["a", "b", "c"])
    assert base != fairness.draw(seed(7), "h", participants, ["a", "b", "c"])


# docs/fairness.md publishes this vector, for anyone writing their own verifier.
KNOWN_SEED = "65aa35ff1ca8e2dcffcced88e4f399d9541a08c69f0b04dfe26893f0e7ab1401"
KNOWN_PARTICIPANTS = [f"p{i:03d}" for i in range(100)]
KNOWN_ITEMS = [f"item{i}" for i in range(12)]


def test_the_draw_gives_the_published_winners_for_the_published_inputs():
    """The algorithm is public and versioned: the same inputs give the same winners on any
    machine and in every release of version 1 (an independent verifier depends on it)."""
    assert fairness.pseudonym("order-kat", "o_member_1") == "c7098043b617e54da1f6"
    assert fairness.commitment(KNOWN_SEED) == "bd82825783bc19056ea4c2726ab42666a042ffa76f4cb004448492736345ddd2"
    assert fairness.participants_hash(KNOWN_PARTICIPANTS) == (
        "6fce44d645f3ef0102f218b50026ebebfbe509a2f9ecfc89b4d1fa8a35fe3785")
    assert fairness.items_hash(KNOWN_ITEMS) == "ba9518dd2cf76c91b7afcff30c13473af388f0d32b9a6bfa5b00d974f8244bf5"
    # Item names are hashed as UTF-8 JSON, not \\u escapes (the proof page computes the same).
    assert fairness.items_hash(["口红", "蓝牙耳机"]) == "fc84bf88d2a0551604e2a3e1d2df5acd6e8b9572081208a56a9801a27c3b9d0b"
    assert fairness.draw(KNOWN_SEED, "order-kat", KNOWN_PARTICIPANTS, KNOWN_ITEMS) == [
        3, 78, 49, 74, 5, 71, 23, 18, 88, 73, 84, 92]
    assert fairness.draw(KNOWN_SEED, "order-kat", KNOWN_PARTICIPANTS[:3], ["a", "b", "c", "d"]) == [1, 0, 2]


def test_the_version_2_test_vector_published_in_docs_with_quicknet_round_3():
    beacon = quicknet_beacon()
    assert beacon["randomness"] == "7ef4621ace1c6da4eb2eee7cd901f81385bca5b189771ec0f08d0d2566dd1a21"
    assert fairness.stream_key(KNOWN_SEED, beacon).hex() == (
        "1ea864e9f5ed39d008200d3a242ba54d7b13178a13cb8d6ec0c893297092be7c")
    assert fairness.draw(KNOWN_SEED, "order-kat", KNOWN_PARTICIPANTS, KNOWN_ITEMS, beacon) == [
        13, 95, 55, 47, 96, 15, 11, 17, 18, 97, 45, 35]
    assert fairness.draw(KNOWN_SEED, "order-kat", KNOWN_PARTICIPANTS[:3], ["a", "b", "c", "d"], beacon) == [0, 2, 1]


def test_a_version_2_proof_over_a_real_quicknet_round_verifies():
    assert fairness.verify(make_v2_proof()) == []


def test_verify_accepts_a_real_proof():
    assert fairness.verify(make_proof(seed(3), [f"m{i}" for i in range(20)], ["A", "B", "C"])) == []


def test_verify_rejects_an_altered_participant_seed_or_winner():
    proof = make_proof(seed(3), [f"m{i}" for i in range(20)], ["A", "B", "C"])
    swapped = copy.deepcopy(proof)
    swapped["participants"][4] = fairness.pseudonym("o1", "intruder")
    swapped["participants"].sort()
    assert "the participant list does not match its hash" in fairness.verify(swapped)
    removed = copy.deepcopy(proof)
    del removed["participants"][0]
    assert "the participant list does not match its hash" in fairness.verify(removed)
    reseeded = copy.deepcopy(proof)
    reseeded["seed"] = seed(4)
    assert "the seed does not match the published commitment" in fairness.verify(reseeded)
    rigged = copy.deepcopy(proof)
    rigged["winners"][0]["participant"] = next(p for p in proof["participants"]
                                               if p not in {w["participant"] for w in proof["winners"]})
    assert fairness.verify(rigged) == ["the winners are not the ones the seed and participants give"]
    restocked = copy.deepcopy(proof)
    restocked["items"] = ["A", "B", "D"]
    assert "the item list does not match its hash" in fairness.verify(restocked)


def test_verify_rejects_a_proof_of_another_algorithm_or_version_whatever_else_it_holds():
    proof = make_proof(seed(3), [f"m{i}" for i in range(5)], ["A"])
    renamed = {**proof, "algorithm": "other"}
    assert fairness.verify(renamed) == ["unknown algorithm other v1"]
    later = {**proof, "version": fairness.VERSION + 1}
    assert fairness.verify(later) == [f"unknown algorithm {fairness.ALGORITHM} v{fairness.VERSION + 1}"]


def test_verify_command_line_says_ok_or_mismatch(tmp_path):
    proof = make_proof(seed(5), [f"m{i}" for i in range(8)], ["A", "B"])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(proof))
    result = subprocess.run([sys.executable, "-m", "lottery.verify", str(good)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("OK")
    proof["seed"] = seed(6)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(proof))
    result = subprocess.run([sys.executable, "-m", "lottery.verify", str(bad)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "MISMATCH" in result.stdout


def test_verify_command_line_checks_a_version_2_proofs_beacon(tmp_path):
    proof = make_v2_proof()
    good = tmp_path / "v2.json"
    good.write_text(json.dumps(proof))
    result = subprocess.run([sys.executable, "-m", "lottery.verify", str(good)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "drand round 3 verified" in result.stdout
    proof["beacon"]["round"] = 4
    bad = tmp_path / "other-round.json"
    bad.write_text(json.dumps(proof))
    result = subprocess.run([sys.executable, "-m", "lottery.verify", str(bad)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "the beacon signature is not the chain's signature" in result.stdout


def test_verify_rejects_winners_who_swapped_items():
    proof = make_proof(seed(9), [f"m{i}" for i in range(10)], ["A", "B", "C"])
    swapped = copy.deepcopy(proof)
    first, second = swapped["winners"][0], swapped["winners"][1]
    first["participant"], second["participant"] = second["participant"], first["participant"]
    assert fairness.verify(swapped) == ["the winners are not the ones the seed and participants give"]


def test_verify_rejects_a_participant_listed_twice_even_with_consistent_hashes():
    proof = make_proof(seed(10), [f"m{i}" for i in range(6)], ["A", "B"])
    doubled = copy.deepcopy(proof)
    doubled["participants"] = sorted(doubled["participants"] + doubled["participants"][:1])
    problems = fairness.verify(consistent(doubled))
    assert problems == ["the participant list is not in canonical (sorted, distinct) order"]


def test_verify_rejects_an_unsorted_participant_list_even_with_consistent_hashes():
    proof = make_proof(seed(11), [f"m{i}" for i in range(6)], ["A", "B"])
    shuffled = copy.deepcopy(proof)
    shuffled["participants"] = list(reversed(shuffled["participants"]))
    problems = fairness.verify(consistent(shuffled))
    assert problems == ["the participant list is not in canonical (sorted, distinct) order"]


def test_each_draw_rejects_exactly_the_values_that_would_favour_low_positions():
    """Rejection sampling: of the 2**64 values a block yields, those past the last whole multiple
    of n are drawn again (else the first positions would win a little more often), and only those."""
    stream = fairness._Stream(b"seed", "context")
    top = 2**64 - 1  # 2**64 % 3 == 1: the one value past the last multiple of 3
    stream.buffer = [5, top]  # values are taken from the end
    assert stream.uniform(3) == 5 % 3  # top is drawn again
    stream.buffer = [0, top - 1]
    assert stream.uniform(3) == (top - 1) % 3  # the last value of a whole multiple is kept


# What `verify` says for each check of the browser's and the mini-program's checkers (the start
# of its problem).
PROBLEMS = {"the seed does not match the published commitment": "commitment",
            "the participant list is not in canonical": "canonical",
            "the participant list does not match its hash": "participants_hash",
            "the item list does not match its hash": "items_hash",
            "the beacon is not the pinned chain": "beacon_chain",
            "the beacon round is not the first round after": "beacon_round",
            "the beacon signature is not": "beacon_signature",
            "the beacon randomness is not": "beacon_signature",
            "no beacon: this draw went ahead without its round": "beacon_signature",
            "the join sequence numbers are not 1 to P": "sequences",
            "the winners are not the ones": "winners",
            "unknown algorithm": "algorithm"}


def checks_failed(problems: list[str]) -> set[str]:
    return {next(check for start, check in PROBLEMS.items() if problem.startswith(start)) for problem in problems}


def test_verify_names_exactly_the_problems_of_each_forgery_the_other_checkers_are_given():
    wrong = {name: problems for name, (forged, failing) in tampered().items()
             if checks_failed(problems := fairness.verify(forged)) != failing}
    assert wrong == {}


def operator_wins(rounds: int, tries: int, beacon_known: bool) -> float:
    """How often an operator who grinds `tries` seeds per gift (and fills the list with their own
    accounts before the freeze: here P = 10 pseudonyms of theirs, one the chosen account) gets one
    item to the chosen account. The operator must commit to the seed before the beacon round
    exists; `beacon_known` pretends they could see it (what version 1's seed-only draw allows)."""
    participants = sorted(fairness.pseudonym("grind", f"sock{i}") for i in range(10))
    chosen = participants.index(fairness.pseudonym("grind", "sock0"))
    wins = 0
    for r in range(rounds):
        actual = {"round": r, "status": "verified", "randomness": hashlib.sha256(f"beacon {r}".encode()).hexdigest()}
        guess = actual if beacon_known else {**actual, "randomness": hashlib.sha256(f"guess {r}".encode()).hexdigest()}
        seeds = [hashlib.sha256(f"seed {r} {t}".encode()).hexdigest() for t in range(tries)]
        best = next((s for s in seeds if fairness.draw(s, "grind", participants, ["A"], guess) == [chosen]), seeds[0])
        wins += fairness.draw(best, "grind", participants, ["A"], actual) == [chosen]
    return wins / rounds


def test_grinding_seeds_before_the_beacon_exists_gains_the_operator_nothing():
    """k/P = 1/10. Over 1000 gifts, grinding 20 seeds each against a guess of the round: the
    chosen account's share stays within 4.5 standard deviations of 0.1 (sigma = 0.0095; a fair
    draw exceeds 0.143 with probability about 3e-6). Against the round itself (as if it were
    known, or absent, as in version 1) grinding wins about 1 - 0.9**20 = 88% of gifts: the test
    can see grinding."""
    assert operator_wins(1000, 20, beacon_known=False) < 0.1 + 4.5 * (0.1 * 0.9 / 1000) ** 0.5
    assert operator_wins(200, 20, beacon_known=True) > 0.7
