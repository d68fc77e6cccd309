"""Draw benchmark: one big draw, and the lateness of many timed openings due together.

1. A timed gift of 100,000 participants and 1,000 items: its records read ahead (as the
   scheduler does 10 s before the open time; `--cold`: not), then the time from taking it into
   `drawing` to the committed result (proof, outbox records, and the finish that commits the
   1,000 winners), then the time to copy the outcomes onto the 100,000 join records.
2. 200 timed gifts due in the same second, opened by the real scheduler: lateness from
   `open_at` to the committed result, the finish's write as its change event dates it (p50, p99,
   max; the p99 from each gift's beacon round to its commit; the p99 of the frozen participant
   list's publication, which a fair draw makes before its beacon round exists; and the p99 of
   the `opened_at` stamp, which the finish takes as it starts).

    python bench/draw.py [--participants 100000] [--items 1000] [--gifts 200]
    python bench/draw.py --cold              # the big draw reading its records at its time
    python bench/draw.py --participants 0    # the timed openings alone
    python bench/draw.py --participants 0 --beacon_period 3   # quicknet's period, its round 1.5 s after the open time

Last line: one JSON object with the figures."""
import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lottery import clock, fairness  # noqa: E402
from lottery.accounts import Accounts  # noqa: E402
from lottery.draw import Draws  # noqa: E402
from lottery.gifts import GiftSpec, Gifts, Item  # noqa: E402
from lottery.notifications import Notifications  # noqa: E402
from lottery.scheduler import Scheduler  # noqa: E402
from lottery.storage.connection import client_for, ensure_indexes  # noqa: E402
from lottery.storage.engine import EmbeddedEngine  # noqa: E402
from tests import beacons  # noqa: E402  (the local drand stand-in and a receipt key)


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (from /proc), to tell the engine's share of a step."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def big_draw(db, participants: int, items: int, engine_pid: int, profile: bool = False, queue: bool = True,
                   cold: bool = False) -> dict:
    gifts = Gifts(db, Accounts(db, None), beacons.receipt_key())
    gift = await gifts.create(GiftSpec("bench_sender", "timed", [Item(f"奖品{i}") for i in range(items)],
                                       open_at=clock.utcnow() + timedelta(hours=1)))
    order_id = gift["_id"]
    now = clock.utcnow() - timedelta(hours=1)  # they joined over the hour before its time
    batch = []
    for i in range(participants):
        member_id = f"m{i:023d}"
        batch.append({"_id": f"{order_id}:{member_id}", "order_id": order_id, "member_id": member_id,
                      "form_id": "", "subscribed": ["t_won", "t_lost"], "joined_at": now, "outcome": None, "item_index": None,
                      "sequence": i + 1, "receipt": ""})  # numbered, as joins are
        if len(batch) == 10000:
            await db.joins.insert_many(batch)
            batch = []
    if batch:
        await db.joins.insert_many(batch)
    now = clock.utcnow()
    await db.gifts.update_one({"_id": order_id}, {"$set": {"joined_count": participants, "open_at": now, "due_at": now}})
    await db.join_sequences.insert_one({"_id": order_id, "last": participants})
    draws = Draws(db, beacons.beacon(), beacons.receipt_key())
    read_ahead_seconds = None
    if not cold:  # as the scheduler does, 10 s before the open time (lottery/read_ahead.py)
        start = time.perf_counter()
        assert await draws.read_ahead.read(order_id)
        read_ahead_seconds = round(time.perf_counter() - start, 3)
    profiler = cProfile.Profile() if profile else None
    engine_cpu = cpu_seconds(engine_pid)
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    assert await draws.open([order_id])
    elapsed = time.perf_counter() - start  # the result is committed (gift finished, winners written)
    engine_cpu = cpu_seconds(engine_pid) - engine_cpu
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumtime").print_stats(30)
    await draws.idle()  # then the outcomes are copied onto the joins
    copy_seconds = time.perf_counter() - start - elapsed
    proof = await draws.proof(order_id)
    assert fairness.verify(proof, beacons.chain()) == []
    won = await db.joins.count_documents({"order_id": order_id, "outcome": "won"})
    assert won == min(items, participants)
    figures = {"participants": participants, "items": items, "records_read_ahead_s": read_ahead_seconds,
               "draw_seconds": round(elapsed, 3),
               "draw_engine_cpu_seconds": round(engine_cpu, 3), "outcomes_recorded_after_s": round(copy_seconds, 3)}
    if not queue:  # (bench/aged.py: its database holds other drawn gifts' records)
        return figures
    # Then the notification queue: a message for every participant, queued as pages, and the
    # sender's entry (the members' openids written first, not timed). Then, apart, the pages'
    # entries made all at once: the worker spreads that over the drain, as the delivery has room.
    for start in range(0, participants, 10000):
        await db.members.insert_many([{"_id": f"m{i:023d}", "openid": f"o_bench{i}"}
                                      for i in range(start, min(start + 10000, participants))])
    notifications = Notifications(db, {"gift_won": "t_won", "gift_lost": "t_lost"})
    start = time.perf_counter()
    assert await notifications.expand_opened_gifts() == 1
    expand_seconds = time.perf_counter() - start
    paged = sum([len(page["members"]) async for page in db.outbox.find({"kind": "participants", "order_id": order_id})])
    assert paged == participants
    start = time.perf_counter()
    assert len(await notifications.expand_pages()) == participants
    entries_seconds = time.perf_counter() - start
    assert await db.notifications.count_documents({"order_id": order_id, "status": "pending"}) == participants
    return {**figures, "notifications_queued_s": round(expand_seconds, 3), "pages_expanded_at_once_s": round(entries_seconds, 3)}


ROUND_AFTER_OPEN = 1.5  # seconds, with rounds seconds apart (lateness())


async def lateness(db, count: int) -> dict:
    gifts = Gifts(db, Accounts(db, None), beacons.receipt_key())
    later = clock.utcnow() + timedelta(hours=1)
    joiners = [await gifts.accounts.ensure_member(f"o_late{i}") for i in range(5)]
    order_ids = []
    for _ in range(count):
        gift = await gifts.create(GiftSpec("bench_sender", "timed", [Item("A"), Item("B")], open_at=later))
        for member_id in joiners:
            await gifts.join(gift["_id"], member_id)
        order_ids.append(gift["_id"])
    # The same open time for all, 3 s ahead whatever the setup took (before the scheduler reads them).
    open_at = (clock.utcnow() + timedelta(seconds=3)).replace(microsecond=0)
    chain = beacons.chain()
    if chain.period >= 1:
        # Rounds seconds apart (quicknet's 3 s): the open time 1.5 s before a round, so each run
        # meets its round at the same point, after the freeze, as a draw usually does.
        round_at = chain.round_time(chain.first_round_after(open_at.timestamp() + ROUND_AFTER_OPEN))
        open_at = datetime.fromtimestamp(round_at - ROUND_AFTER_OPEN, timezone.utc)
    await db.gifts.update_many({"_id": {"$in": order_ids}}, {"$set": {"open_at": open_at, "due_at": open_at}})
    scheduler = Scheduler(db, Draws(db, beacons.beacon(), beacons.receipt_key()), sweep_interval=float(os.environ.get("SWEEP", "1.0")))
    # When each finish was committed: its change event's `wallTime` (the finish stamps `opened_at`
    # as it starts; a batch's finish writes its gifts 50 at a time after that).
    # The frozen list's publication likewise: what a fair draw can do before its beacon round
    # (up to a period after the freeze: 0.25 s with the local stand-in, 3 s with quicknet).
    committed, frozen = {}, {}
    async with await db.gifts.watch([{"$match": {"$or": [{"updateDescription.updatedFields.status": "finished"},
                                                         {"updateDescription.updatedFields.freeze": {"$exists": True}}]}}],
                                    max_await_time_ms=200) as stream:
        scheduler.start()
        try:
            deadline = time.monotonic() + 300
            while len(committed) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(committed)} of {count} gifts finished in 300 s")
                event = await stream.try_next()
                if event is not None:
                    # (A pipeline update's event may name fields it did not change: the status decides.)
                    fields, order_id = event["updateDescription"]["updatedFields"], event["documentKey"]["_id"]
                    if fields.get("status") == "finished":
                        committed[order_id] = event["wallTime"]
                    elif "freeze" in fields:
                        frozen.setdefault(order_id, event["wallTime"])
        finally:
            await scheduler.stop()
    gifts_now = {g["_id"]: g async for g in db.gifts.find({"_id": {"$in": order_ids}})}

    def after_open_at(times: dict) -> list[float]:
        return sorted((clock.as_utc(times[o]) - clock.as_utc(g["open_at"])).total_seconds() for o, g in gifts_now.items())

    def p99(values: list[float]) -> float:
        return round(values[max(0, int(len(values) * 0.99) - 1)], 3)

    late = after_open_at(committed)
    # From the moment each gift's beacon round exists to its commit: what the draw does once the
    # randomness is there (the rest of the lateness is the freeze and the wait for that round).
    rounds = {p["_id"]: p["beacon"]["round"] async for p in db.proofs.find({"_id": {"$in": order_ids}}, {"beacon.round": 1})}
    after_round = sorted(clock.as_utc(committed[o]).timestamp() - chain.round_time(rounds[o]) for o in order_ids)
    return {"gifts_due_together": count, "lateness_p50_s": round(statistics.median(late), 3),
            "lateness_p99_s": p99(late), "lateness_max_s": round(late[-1], 3),
            "after_beacon_round_p99_s": p99(after_round),
            "freeze_published_p99_s": p99(after_open_at(frozen)),
            "opened_at_stamp_p99_s": p99(sorted((g["opened_at"] - g["open_at"]).total_seconds() for g in gifts_now.values()))}


async def run(args: argparse.Namespace) -> dict:
    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    client = client_for(uri)
    try:
        figures: dict = {}
        if args.participants:  # 0: the timed openings alone
            big_db = client["bench_draw_big"]
            await ensure_indexes(big_db)
            figures = await big_draw(big_db, args.participants, args.items, engine.pid, args.profile, cold=args.cold)
        late_db = client["bench_draw_late"]
        await ensure_indexes(late_db)
        figures.update(await lateness(late_db, args.gifts))
    finally:
        await client.close()
        engine.stop()
    return {"bench": "draw", **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=100_000, help="0: skip the big draw")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--gifts", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="profile the big draw (to stderr)")
    parser.add_argument("--cold", action="store_true",
                        help="no read ahead: the big draw reads its records at its time (a new scheduler leader's first draw)")
    parser.add_argument("--beacon_period", type=float, default=beacons.TEST_PERIOD,
                        help="seconds between the beacon stand-in's rounds (quicknet's: 3)")
    args = parser.parse_args()
    beacons.start_fake(args.beacon_period)
    beacons.start_receipt_key()
    figures = asyncio.run(run(args))
    if "participants" in figures:
        print(f"draw of {figures['participants']} participants, {figures['items']} items: {figures['draw_seconds']} s "
              f"to the committed result, winners on their joins {figures['outcomes_recorded_after_s']} s later, "
              f"a notification queued for everyone {figures['notifications_queued_s']} s after that "
              f"(their entries made at once: {figures['pages_expanded_at_once_s']} s)")
    print(f"{figures['gifts_due_together']} gifts due together: lateness p50 {figures['lateness_p50_s']} s, "
          f"p99 {figures['lateness_p99_s']} s, max {figures['lateness_max_s']} s; "
          f"committed p99 {figures['after_beacon_round_p99_s']} s after their beacon round; "
          f"their frozen lists published by p99 {figures['freeze_published_p99_s']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
