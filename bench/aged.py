"""A year of data: the hot paths on a database holding months of history, against an empty one.

Builds, through the project's own document builders and storage code (bulk inserts), an aged
database: 50,000 finished gifts of the three methods with their 500,000 joins (winners and
losers), the final notification entries and done outbox records retention keeps (the last 90
and 30 days': older ones MongoDB would have removed, and written here they would stall the
embedded engine for tens of seconds while its TTL sweep removed them, bench/expiry.py), the
proofs, members and live login keys, plus 200 open gifts. Then runs, on it and on an empty database of
the same engine (on disk, as an operator runs it):

- the join storm (full and timed): U members join one hot gift over HTTP at concurrency C;
- the draw: 200 timed gifts due in the same second (lateness), and one gift of P participants;
- a notification drain of N entries through the WeChat fake;
- the idle sweep: one scheduler round with nothing due (draw sweep, jobs to schedule, the
  notification worker's poll), its time per round.

Prints each figure on both databases and the ratio (aged relative to empty, 1.0 = as fast;
rates aged/empty, times empty/aged), the size of the data directory per 10,000 gifts, and last
one JSON object.

    python bench/aged.py [--gifts 50000] [--users 1000] [--participants 100000] [--entries 5000]"""
import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import beacons  # noqa: E402  (the local drand stand-in and a receipt key)

from bench import draw as draw_bench  # noqa: E402
from bench import join_storm, notify as notify_bench  # noqa: E402

BATCH = 5000
# What retention keeps (the defaults, docs/configuration.md): older entries and records are not written.
NOTIFICATIONS_KEPT = timedelta(days=90)
OUTBOX_KEPT = timedelta(days=30)
METHODS = ("direct", "full", "timed")


async def insert_all(collection, docs: list[dict]) -> None:
    from lottery.storage.writes import insert_new

    for start in range(0, len(docs), BATCH):
        await insert_new(collection, docs[start:start + BATCH])


async def build_aged(db, gifts: int, joins_per_gift: int, entries_per_gift: int, open_gifts: int) -> dict:
    """The history an operator accumulates; returns how many documents of each kind."""
    from lottery import clock, fairness
    from lottery.accounts import Accounts, key_digest, member_id_for
    from lottery.gifts import GiftSpec, Gifts, Item, new_gift
    from lottery.notifications import gift_values, new_entry
    from lottery.storage import joins, outbox
    from lottery.storage.connection import ensure_indexes

    await ensure_indexes(db)
    rng = random.Random(7)
    now = clock.utcnow()
    pool = 20_000  # members who join, over and over
    member_ids = [member_id_for(f"aged{i}") for i in range(pool)]
    await insert_all(db.members, [{"_id": m, "openid": f"aged{i}", "nickname": f"用户{i}", "created_at": now}
                                  for i, m in enumerate(member_ids)])
    await insert_all(db.login_keys, [{"_id": key_digest(f"key{i}"), "member_id": m,
                                      "expires_at": now + timedelta(days=30)} for i, m in enumerate(member_ids)])
    sender = {"nickname": "老用户", "avatar_url": ""}
    counts = {"gifts": 0, "joins": 0, "notifications": 0, "outbox": 0, "proofs": 0, "draw_results": 0}
    for start in range(0, gifts, 1000):
        gift_docs, join_docs, entry_docs, record_docs, proof_docs, result_docs = [], [], [], [], [], []
        for g in range(start, min(start + 1000, gifts)):
            method = METHODS[g % 3]
            created = now - timedelta(days=365) + timedelta(minutes=10 * g)
            items = [Item(f"奖品{i}") for i in range(3)]
            spec = GiftSpec(f"aged_sender{g % 500}", method, items, open_number=joins_per_gift,
                            open_at=created + timedelta(hours=1))
            gift = new_gift(spec, member_id_for(f"aged_sender{g % 500}"), sender, created)
            joiners = rng.sample(member_ids, joins_per_gift)
            winners = joiners[:len(items)] if method != "direct" else []
            gift.update(status="finished", opened_at=created + timedelta(hours=1), scheduled=True,
                        joined_count=len(joiners), items_left=0, seats_left=0, version=len(joiners) + 3,
                        claimants={m: i for i, m in enumerate(joiners[:len(items)] if method == "direct" else
                                                              joiners if method == "full" else [])})
            if method != "direct":
                gift["draw"] = {"winners": winners, "returned": [], "participant_count": len(joiners),
                                "participants_hash": "aged", "algorithm": f"{fairness.ALGORITHM}/v{fairness.VERSION}"}
                proof_docs.append({"_id": gift["_id"], "algorithm": fairness.ALGORITHM, "version": fairness.VERSION,
                                   "participants": sorted(fairness.pseudonym(gift["_id"], m) for m in joiners),
                                   "created_at": created})
                result_docs.append({"_id": gift["_id"], "winner_member_ids": winners})
                record_docs += [] if created < now - OUTBOX_KEPT else [
                    {**outbox.new_record(kind, gift["_id"], created), "status": "done", "done_at": created}
                    for kind in ("gift_opened", "record_outcomes")]
            gift_docs.append(gift)
            for index, member_id in enumerate(joiners if method != "direct" else joiners[:len(items)]):
                join = joins.new_join(gift["_id"], member_id, created)
                won = index < len(items)
                join.update(outcome="won" if won else "lost", item_index=index if won else None)
                if method == "direct":
                    join["notify"] = "done"
                join_docs.append(join)
            values = gift_values(gift)
            for member_id in joiners[:entries_per_gift] if created >= now - NOTIFICATIONS_KEPT else []:
                entry = new_entry(gift["_id"], member_id, "gift_lost", f"o_{member_id}", "tpl", True, values, created)
                entry.update(status="sent", attempts=1, sent_at=created, final_at=created)
                entry_docs.append(entry)
        for collection, docs in ((db.gifts, gift_docs), (db.joins, join_docs), (db.notifications, entry_docs),
                                 (db.outbox, record_docs), (db.proofs, proof_docs), (db.draw_results, result_docs)):
            await insert_all(collection, docs)
            counts[collection.name] += len(docs)
    service = Gifts(db, Accounts(db, None), beacons.receipt_key())
    for g in range(open_gifts):  # live ones, through the real service
        method = METHODS[g % 3]
        await service.create(GiftSpec(f"open_sender{g}", method, [Item("礼物")], open_number=50,
                                      open_at=now + timedelta(days=7)))
    counts["open_gifts"] = open_gifts
    return counts


async def idle_sweep(db, uri: str, rounds: int) -> float:
    """Milliseconds of one scheduler round with nothing due: the draw's sweep, the read of the
    gifts due within the scheduler's horizon, and the notification worker's poll (expand, deliver)."""
    from lottery import clock
    from lottery.draw import Draws
    from lottery.scheduler import READ_AHEAD, SPARE
    from lottery.storage import gifts
    from notify.templates import parse_config
    from wechat.client import WeChatClient
    from notify.worker import NotificationWorker
    from tests.notify.support import CONFIG_JSON

    draws = Draws(db, beacons.beacon(), beacons.receipt_key())
    worker = NotificationWorker(db, WeChatClient("bench", "bench", "http://127.0.0.1:9"), parse_config(CONFIG_JSON))
    await draws.sweep()  # warm
    started = time.perf_counter()
    for _ in range(rounds):
        assert await draws.sweep() == 0
        await gifts.due_by(db, clock.utcnow() + SPARE + READ_AHEAD)
        await worker.expand_once()
        await worker.deliver_once()
    return (time.perf_counter() - started) / rounds * 1000


async def measure(uri: str, engine_pid: int, db_name: str, args: argparse.Namespace, fake) -> dict:
    """Every figure on one database."""
    from lottery.storage.connection import client_for, ensure_indexes

    figures = {}
    await join_storm.storm(uri, db_name, "timed", 100, args.concurrency)  # warm-up, not counted
    for method in ("full", "timed"):
        storm = await join_storm.storm(uri, db_name, method, args.users, args.concurrency)
        figures[f"join_{method}_per_s"] = storm["joins_per_s"]
        figures[f"join_{method}_p99_ms"] = storm["p99_ms"]
        figures[f"join_{method}_round_trips"] = storm["db_round_trips_per_join"]
    client = client_for(uri)
    db = client[db_name]
    try:
        await ensure_indexes(db)
        # The drain and the idle sweep before the draws: a worker started after the big draw
        # would first expand its 100,000 participants' results, and that is not a drain.
        drained = await notify_bench.drain(db, fake, args.entries, 4)
        assert drained["delivered_once"], drained
        figures["notify_per_s"] = drained["steady_messages_per_second"]
        figures["idle_sweep_ms"] = round(await idle_sweep(db, uri, 50), 2)
        late = await draw_bench.lateness(db, args.due_together)
        figures["draw_200_due_lateness_p99_s"] = late["lateness_p99_s"]
        big = await draw_bench.big_draw(db, args.participants, 1000, engine_pid, queue=False)
        figures["draw_big_seconds"] = big["draw_seconds"]
    finally:
        await client.close()
    return figures


# Which way "better" goes for each figure: rates up, times down.
RATES = ("join_full_per_s", "join_timed_per_s", "notify_per_s")


def ratio(name: str, empty: float, aged: float) -> float:
    if name.endswith("round_trips"):
        return round(empty / aged, 3) if aged else 1.0
    if name in RATES:
        return round(aged / empty, 3)
    return round(empty / aged, 3) if aged else 1.0


def size_of(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True).stdout.split()[0])


async def run(args: argparse.Namespace) -> dict:
    from lottery.storage.connection import client_for
    from lottery.storage.engine import EmbeddedEngine

    data_dir = tempfile.mkdtemp(prefix="aged-bench-")
    engine = EmbeddedEngine(data_dir)
    uri = engine.start()
    try:
        before = size_of(data_dir)
        client = client_for(uri)
        started = time.perf_counter()
        counts = await build_aged(client["aged"], args.gifts, args.joins_per_gift, args.entries_per_gift, args.open_gifts)
        build_seconds = time.perf_counter() - started
        await client.admin.command("fsync")
        await client.close()
        size = size_of(data_dir) - before
        print(f"aged database: {counts} built in {build_seconds:.0f} s; data directory +{size / 2**20:.0f} MiB "
              f"({size / 2**20 / args.gifts * 10000:.0f} MiB per 10,000 gifts with their history)", flush=True)
        with notify_bench.fake_wechat() as fake:
            empty = await measure(uri, engine.pid, "empty", args, fake)
            print(f"empty: {empty}", flush=True)
            aged = await measure(uri, engine.pid, "aged", args, fake)
            print(f"aged:  {aged}", flush=True)
    finally:
        engine.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    ratios = {name: ratio(name, empty[name], aged[name]) for name in empty}
    return {"bench": "aged", "history": counts, "data_mib_per_10000_gifts": round(size / 2**20 / args.gifts * 10000, 1),
            "empty": empty, "aged": aged, "ratio_aged_to_empty": ratios, "worst_ratio": min(ratios.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gifts", type=int, default=50_000, help="finished gifts in the history")
    parser.add_argument("--joins_per_gift", type=int, default=10)
    parser.add_argument("--entries_per_gift", type=int, default=4, help="notification entries per gift")
    parser.add_argument("--open_gifts", type=int, default=200)
    parser.add_argument("--users", type=int, default=1000, help="members in each join storm")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--due_together", type=int, default=200)
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=5000, help="notifications drained")
    beacons.start_fake()
    beacons.start_receipt_key()
    figures = asyncio.run(run(parser.parse_args()))
    print(f"{'figure':32} {'empty':>10} {'aged':>10} {'ratio':>7}")
    for name in figures["empty"]:
        print(f"{name:32} {figures['empty'][name]:>10} {figures['aged'][name]:>10} "
              f"{figures['ratio_aged_to_empty'][name]:>7}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
