"""What one write costs on the embedded engine: the floor under every batch figure.

On real gift documents (made by the domain, with the real indexes), the median of `--repeats`
runs of each write a draw batch makes, at two batch sizes:

- a statement that matches nothing (the fixed cost of any write statement);
- `update_many` moving N gifts to another status (as the draw's take does), and the same on a
  copy of the documents without the gifts' five secondary indexes (the engine rewrites every
  index entry of a document it updates, changed or not; MongoDB only those whose keys changed);
- `storage/writes.set_each` giving N gifts their own values (as the freeze's publication and the
  finish do);
- `insert_many` of N documents of a proof's size (as the freeze's proofs).

From the two sizes it derives the cost a document adds to a statement, and the floor it puts
under N timed gifts due together: their draw writes each gift's document at least three times
(taken, its frozen list published, its result committed) and inserts its proof.

    python bench/engine_writes.py [--gifts 200] [--repeats 7]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lottery import clock  # noqa: E402
from lottery.accounts import Accounts  # noqa: E402
from lottery.gifts import GiftSpec, Gifts, Item  # noqa: E402
from lottery.storage.connection import client_for, ensure_indexes  # noqa: E402
from lottery.storage.engine import EmbeddedEngine  # noqa: E402
from lottery.storage.writes import set_each  # noqa: E402
from tests import beacons  # noqa: E402

WRITES_PER_GIFT = 3  # taken, frozen list published, result committed (and one proof inserted)


async def timed(write) -> float:
    started = time.perf_counter()
    await write()
    return time.perf_counter() - started


async def costs(db, order_ids: list[str], repeats: int) -> dict:
    """Median milliseconds of each write over these gifts, back to `open` after each run."""
    runs: dict[str, list[float]] = {"no_match": [], "update_many": [], "update_many_id_index_only": [],
                                    "set_each": [], "insert_many": []}
    await db.plain_gifts.insert_many(await db.gifts.find().to_list())  # the same documents, no secondary index
    proof = {"participants": [f"p{i:062d}" for i in range(5)], "sequences": list(range(1, 6)),
             "items": ["A", "B"], "participants_hash": "h" * 64, "items_hash": "i" * 64, "seed": "s" * 64}
    for run in range(repeats):
        now = clock.utcnow()
        runs["no_match"].append(await timed(lambda: db.gifts.update_many(
            {"status": "no such status"}, {"$set": {"updated_at": now}})))
        runs["update_many"].append(await timed(lambda: db.gifts.update_many(  # no id list, as the take
            {"status": "open"}, {"$set": {"status": "drawing", "updated_at": now}, "$inc": {"version": 1}})))
        runs["update_many_id_index_only"].append(await timed(lambda: db.plain_gifts.update_many(
            {"status": "open"}, {"$set": {"status": "drawing", "updated_at": now}, "$inc": {"version": 1}})))
        runs["set_each"].append(await timed(lambda: set_each(
            db.gifts, {o: {"freeze": {"count": i, "at": now}} for i, o in enumerate(order_ids)},
            where={"status": "drawing"}, also={"version": {"$add": ["$version", 1]}})))
        runs["insert_many"].append(await timed(lambda: db.bench_proofs.insert_many(
            [{"_id": o, **proof} for o in order_ids])))
        await db.gifts.update_many({}, {"$set": {"status": "open"}, "$unset": {"freeze": ""}})
        await db.plain_gifts.update_many({}, {"$set": {"status": "open"}})
        await db.bench_proofs.delete_many({})
    return {name: round(1000 * statistics.median(times), 2) for name, times in runs.items()}


async def run(args: argparse.Namespace) -> dict:
    engine = EmbeddedEngine(":memory:")
    client = client_for(engine.start())
    try:
        at = {}
        for count in (args.gifts // 4, args.gifts):  # each size in a database of its own
            db = client[f"bench_engine_writes_{count}"]
            await ensure_indexes(db)
            gifts = Gifts(db, Accounts(db, None), beacons.receipt_key())
            later = clock.utcnow() + timedelta(days=1)
            order_ids = [(await gifts.create(GiftSpec("bench_sender", "timed", [Item("A"), Item("B")], open_at=later)))["_id"]
                         for _ in range(count)]
            at[count] = await costs(db, order_ids, args.repeats)
    finally:
        await client.close()
        engine.stop()
    n_small, n_big = sorted(at)
    per_document = {name: round((at[n_big][name] - at[n_small][name]) / (n_big - n_small), 3)
                    for name in ("update_many", "update_many_id_index_only", "set_each", "insert_many")}
    floor = WRITES_PER_GIFT * args.gifts * statistics.mean([per_document["update_many"], per_document["set_each"]]) \
        + args.gifts * per_document["insert_many"]
    return {"bench": "engine_writes", "gifts": args.gifts, "repeats": args.repeats,
            "statement_ms": at[n_big]["no_match"],
            **{f"{name}_ms_at_{n}": at[n][name] for n in (n_small, n_big) for name in per_document},
            **{f"{name}_ms_per_document": cost for name, cost in per_document.items()},
            "draw_writes_floor_ms": round(floor)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gifts", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    beacons.start_receipt_key()
    figures = asyncio.run(run(args))
    print(f"a write statement that matches nothing: {figures['statement_ms']} ms")
    for name in ("update_many", "update_many_id_index_only", "set_each", "insert_many"):
        print(f"{name}: {figures[f'{name}_ms_per_document']} ms a document "
              f"({figures[f'{name}_ms_at_{args.gifts}']} ms for {args.gifts})")
    print(f"{args.gifts} timed gifts due together: at least {figures['draw_writes_floor_ms']} ms of writes "
          f"({WRITES_PER_GIFT} of each gift's document and its proof's insert)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
