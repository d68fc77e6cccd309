"""Check a gift's fairness proof: `python -m lottery.verify PROOF.json [--chain CHAIN.json]`.

PROOF.json is what GET /api/v1/gifts/{order_id}/proof answers. Exit status 0 when the
commitment, the hashes, the beacon round (version 2) and the winners all recompute, 1 otherwise.
A version-1 proof needs the standard library only; a version-2 proof's drand round is checked
against drand quicknet's public key, pinned in lottery/drand.py (py-arkworks-bls12381 does the
pairing). `--chain` names another chain's parameters instead (a development server's local
stand-in: GET /api/v1/beacon answers them)."""
import argparse
import json
import sys

from lottery.fairness import verify


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lottery.verify", description=__doc__.splitlines()[0])
    parser.add_argument("proof", help="the proof, as GET /api/v1/gifts/{order_id}/proof answers it")
    parser.add_argument("--chain", help="another drand chain's parameters (JSON), instead of quicknet")
    args = parser.parse_args(argv)
    with open(args.proof, encoding="utf-8") as handle:
        proof = json.load(handle)
    chain = None
    if args.chain:
        from lottery import drand

        with open(args.chain, encoding="utf-8") as handle:
            chain = drand.Chain.from_dict(json.load(handle))
        print(f"note: checking the beacon against chain {chain.chain_hash}, not drand quicknet")
    problems = verify(proof, chain)
    name = proof.get("order_id", "?")
    if problems:
        print(f"MISMATCH for gift {name}:")
        for problem in problems:
            print(f"- {problem}")
        return 1
    beacon = f", drand round {proof['beacon']['round']} verified" if proof.get("version") == 2 else ""
    print(f"OK: gift {name}: seed matches its commitment{beacon}, {len(proof['participants'])} participants, "
          f"{len(proof['winners'])} winners recomputed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
