"""Check a gift's fairness proof: `python -m lottery.verify PROOF.json` (standard library only).

PROOF.json is what GET /api/v1/gifts/{order_id}/proof answers. Exit status 0 when the
commitment, the participant hash and the winners all recompute, 1 otherwise."""
import json
import sys

from lottery.fairness import verify


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lottery.verify PROOF.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        proof = json.load(handle)
    problems = verify(proof)
    name = proof.get("order_id", "?")
    if problems:
        print(f"MISMATCH for gift {name}:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    print(f"OK: gift {name}: seed matches its commitment, {len(proof['participants'])} participants, "
          f"{len(proof['winners'])} winners recomputed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
