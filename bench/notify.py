"""Notification delivery: how fast the worker drains the outbox against the local WeChat fake.

N pending entries (every member subscribed) are put straight into the outbox; one worker with
concurrency C and no rate limit (or --rate) delivers them to the fake, which runs in its own
process and answers like WeChat (token check, field limits). Measures messages delivered per
second and the time to drain all N, and checks each was delivered exactly once.

    python bench/notify.py [--entries 10000] [--concurrency 4] [--rate 0] [--pages]

With --pages the messages are queued as a drawn gift's participant pages (lottery/notifications.py),
which the worker turns into entries as the delivery has room for them.

Last line: one JSON object with the figures."""
import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from typing import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FAKE = """
import sys
sys.path.insert(0, {root!r})
from fakes.wechat import FakeWeChat
fake = FakeWeChat().start()
print(fake.port, flush=True)
while sys.stdin.readline():
    print(len(fake.delivered), len({{m["touser"] for m in fake.delivered}}), flush=True)
"""


class FakeProcess:
    """The WeChat fake in a process of its own (so this one's loop is the worker's alone)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{int(process.stdout.readline())}"

    def delivered(self) -> tuple[int, int]:
        """(messages delivered so far, distinct recipients)."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        count, unique = map(int, self.process.stdout.readline().split())
        return count, unique


@contextlib.contextmanager
def fake_wechat() -> Iterator[FakeProcess]:
    process = subprocess.Popen([sys.executable, "-c", FAKE.format(root=ROOT)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        yield FakeProcess(process)
    finally:
        process.kill()


async def drain(db, fake: FakeProcess, entries: int, concurrency: int, rate: float = 0.0, pages: bool = False) -> dict:
    """Put `entries` pending entries into this database's outbox (or, with `pages`, a drawn
    gift's participant pages, which the worker turns into entries as it has room), drain them
    with one worker, and say how fast; checks every message reached the fake once."""
    from lottery import clock
    from lottery.notifications import PAGE_SIZE, new_entry
    from lottery.storage import notifications as store
    from lottery.storage import outbox
    from notify.templates import parse_config
    from wechat.client import WeChatClient
    from notify.worker import Limits, NotificationWorker
    from fakes.wechat import APPID, SECRET
    from tests.notify.support import CONFIG_JSON
    from tornado.httpclient import AsyncHTTPClient

    delivered_before, _ = fake.delivered()
    now = clock.utcnow()
    run = f"bench{time.monotonic_ns()}"
    values = {"order_id": run, "item": "口红", "result": "恭喜中奖", "opened_at": "2026-01-01 12:00",
              "wish": "新年快乐"}
    if pages:
        for start in range(0, entries, 1000):
            await db.members.insert_many([{"_id": f"m{i:07d}", "openid": f"o_{run}_{i}"}
                                          for i in range(start, min(start + 1000, entries))])
        await outbox.add(db, [outbox.new_page(run, f"{start // PAGE_SIZE:05d}", [
            {"member_id": f"m{i:07d}", "subscribed": ["tpl_lost"]} for i in range(start, min(start + PAGE_SIZE, entries))],
            values, now, None) for start in range(0, entries, PAGE_SIZE)])
    else:
        docs = [new_entry(run, f"m{i:07d}", "gift_won", f"o_{run}_{i}", "tpl_won", True, values, now)
                for i in range(entries)]
        for start in range(0, len(docs), 1000):
            await store.insert(db, docs[start:start + 1000])
    http = AsyncHTTPClient(force_instance=True, max_clients=concurrency + 2)
    worker = NotificationWorker(db, WeChatClient(APPID, SECRET, fake.url, http=http), parse_config(CONFIG_JSON),
                                Limits(rate=rate, concurrency=concurrency, lease=timedelta(seconds=60),
                                       poll_interval=0.05))
    started = time.perf_counter()
    marks: list[tuple[float, int]] = []
    worker.start()
    # Progress from the fake's count, not the database's: counting 10,000 entries by status costs
    # the embedded engine half a second, which polled twice a second halved the worker's share.
    while True:
        delivered, _ = fake.delivered()
        marks.append((time.perf_counter() - started, delivered - delivered_before))
        if delivered - delivered_before >= entries:
            counts = await store.status_counts(db, run)
            if counts["pending"] + counts["sending"] == 0 and set(await outbox.page_counts(db, run)) <= {"done"}:
                break
        await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    await worker.stop()
    http.close()
    delivered, unique = fake.delivered()
    # Steady rate: the middle 80 % of the drain, without start-up and tail.
    lo = next(m for m in marks if m[1] >= entries * 0.1)
    hi = next(m for m in marks if m[1] >= entries * 0.9)
    steady = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else entries / seconds
    return {"entries": entries, "through_pages": pages, "concurrency": concurrency, "rate_limit": rate,
            "sent": (await store.status_counts(db, run))["sent"], "drain_seconds": round(seconds, 2),
            "messages_per_second": round(entries / seconds, 1), "steady_messages_per_second": round(steady, 1),
            "retried": worker.stats.retried,
            "delivered_once": delivered - delivered_before == entries and unique - delivered_before == entries}


async def run(args: argparse.Namespace, uri: str, fake: FakeProcess) -> dict:
    from lottery.storage.connection import client_for, ensure_indexes

    client = client_for(uri)
    db = client["bench_notify"]
    await ensure_indexes(db)
    try:
        return await drain(db, fake, args.entries, args.concurrency, args.rate, args.pages)
    finally:
        await client.drop_database("bench_notify")
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s limit; 0: none")
    parser.add_argument("--pages", action="store_true",
                        help="queue the messages as a drawn gift's participant pages instead of entries")
    args = parser.parse_args()
    from lottery.storage.engine import EmbeddedEngine

    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    try:
        with fake_wechat() as fake:
            result = asyncio.run(run(args, uri, fake))
    finally:
        engine.stop()
    print(f"{result['entries']} entries, concurrency {result['concurrency']}: drained in "
          f"{result['drain_seconds']} s, {result['messages_per_second']} msg/s overall, "
          f"{result['steady_messages_per_second']} msg/s steady; delivered once each: {result['delivered_once']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
