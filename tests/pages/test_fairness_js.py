"""static/js/fairness.js (the proof page's WebCrypto check) agrees with lottery/fairness.py."""
import secrets

import pytest

from lottery import fairness


def python_proof(participants: int, item_names: list[str]) -> dict:
    seed, order_id = secrets.token_hex(32), secrets.token_hex(12)
    pseudonyms = sorted(fairness.pseudonym(order_id, f"m{i}") for i in range(participants))
    positions = fairness.draw(seed, order_id, pseudonyms, item_names)
    return {"algorithm": fairness.ALGORITHM, "version": fairness.VERSION, "order_id": order_id,
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


def test_the_browser_flags_each_kind_of_tampering(page):
    proof = python_proof(30, ["A", "B", "C"])
    other = next(p for p in proof["participants"] if p not in {w["participant"] for w in proof["winners"]})
    cases = {
        "commitment": {"seed": secrets.token_hex(32)},
        "canonical": {"participants": list(reversed(proof["participants"]))},
        "participants_hash": {"participants": proof["participants"][1:]},
        "items_hash": {"items": ["A", "B", "D"]},
        "winners": {"winners": [{"participant": other, "item_index": 0}, *proof["winners"][1:]]},
    }
    for check, change in cases.items():
        checks = browser_checks(page, {**proof, **change})
        assert checks[check] is False, (check, checks)
        assert fairness.verify({**proof, **change}) != []
