"""static/js/fairness.js (the proof page's WebCrypto check) agrees with lottery/fairness.py: it
recomputes the same draws and refuses the same forgeries."""
import secrets

import pytest

from lottery import fairness
from tests.proofs import SEED, TIERS, make_proof, make_v2_proof, tampered


def python_proof(participants: int, item_names: list[str]) -> dict:
    seed, order_id = secrets.token_hex(32), secrets.token_hex(12)
    pseudonyms = sorted(fairness.pseudonym(order_id, f"m{i}") for i in range(participants))
    positions = fairness.draw(seed, order_id, pseudonyms, item_names)
    return {"algorithm": fairness.ALGORITHM, "version": 1, "order_id": order_id,
            "seed": seed, "seed_commitment": fairness.commitment(seed), "participants": pseudonyms,
            "participants_hash": fairness.participants_hash(pseudonyms), "items": item_names,
            "items_hash": fairness.items_hash(item_names),
            "winners": [{"participant": pseudonyms[p], "item_index": i} for i, p in enumerate(positions)]}


def browser_checks(page, proof: dict) -> dict[str, bool]:
    checks = page.evaluate("""async (proof) => {
        const { verify } = await import('/static/js/fairness.js');
        return (await verify(proof)).map((c) => [c.name, c.ok]);
    }""", proof)
    return dict(checks)


@pytest.fixture
def page(site, people):
    return people(site, "验证者", signed_in=False).open("/").page


@pytest.mark.parametrize("participants, items", [
    (1, 1), (2, 1), (7, 3), (3, 5), (500, 20), (4, 0),
])
def test_the_browser_recomputes_the_python_draw(page, participants, items):
    names = [f"礼物 {i} \"引号\" \\ é 😀" for i in range(items)]
    proof = python_proof(participants, names)
    assert fairness.verify(proof) == []
    checks = browser_checks(page, proof)
    assert checks == {"commitment": True, "canonical": True, "participants_hash": True,
                      "items_hash": True, "winners": True}


def test_the_browser_recomputes_a_tiered_draw(page):
    proof = make_proof(SEED, [f"m{i}" for i in range(9)], ["灯", "伞", "伞"], tiers=TIERS)
    assert fairness.verify(proof) == []
    assert set(browser_checks(page, proof).values()) == {True}


def test_the_browser_refuses_every_forgery_the_python_verifier_refuses(page):
    """tests/proofs.py's forgeries: winners who swapped items, a participant listed twice or an
    unsorted list (hashes and winners recomputed to match), another seed or commitment, ...:
    exactly the checks named for each fail, as the Python verifier's problems do."""
    wrong = {}
    for name, (forged, failing) in tampered().items():
        assert fairness.verify(forged) != [], name
        checks = browser_checks(page, forged)
        if {check for check, ok in checks.items() if not ok} != failing:
            wrong[name] = checks
    assert wrong == {}


def test_the_browser_verifies_a_version_2_proof_over_a_real_quicknet_round_against_the_pinned_key(page):
    proof = make_v2_proof()
    assert browser_checks(page, proof) == {
        "commitment": True, "canonical": True, "participants_hash": True, "items_hash": True, "sequences": True,
        "beacon_chain": True, "beacon_round": True, "beacon_signature": True, "winners": True}
