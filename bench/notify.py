"""Notification delivery: how fast the worker drains the outbox against the local WeChat fake.

N pending entries (every member subscribed) are put straight into the outbox; one worker with
concurrency C and no rate limit (or --rate) delivers them to the fake, which runs in its own
process and answers like WeChat (token check, field limits). Measures messages delivered per
second and the time to drain all N, and checks each was delivered exactly once.

    python bench/notify.py [--entries 10000] [--concurrency 4] [--rate 0]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FAKE = """
import sys, time
sys.path.insert(0, {root!r})
from tests.fakes.wechat import FakeWeChat
fake = FakeWeChat().start()
print(fake.port, flush=True)
sys.stdin.readline()
print(len(fake.delivered), len({{m["touser"] for m in fake.delivered}}), flush=True)
"""


async def run(args: argparse.Namespace, uri: str, fake_url: str) -> dict:
    from lottery import clock
    from lottery.notifications import new_entry
    from lottery.storage.connection import client_for, ensure_indexes
    from notify.templates import parse_config
    from notify.wechat import WeChatClient
    from notify.worker import Limits, NotificationWorker
    from tests.fakes.wechat import APPID, SECRET
    from tests.notify.support import CONFIG_JSON
    from tornado.httpclient import AsyncHTTPClient

    client = client_for(uri)
    db = client["bench_notify"]
    await ensure_indexes(db)
    now = clock.utcnow()
    values = {"order_id": "bench", "item": "口红", "result": "恭喜中奖", "opened_at": "2026-01-01 12:00",
              "wish": "新年快乐"}
    entries = [new_entry("bench", f"m{i:07d}", "gift_won", f"o_bench{i}", "tpl_won", True, values, now)
               for i in range(args.entries)]
    for start in range(0, len(entries), 1000):
        await db.notifications.insert_many(entries[start:start + 1000])
    http = AsyncHTTPClient(force_instance=True, max_clients=args.concurrency + 2)
    wechat = WeChatClient(APPID, SECRET, fake_url, http=http)
    worker = NotificationWorker(db, wechat, parse_config(CONFIG_JSON), Limits(
        rate=args.rate, concurrency=args.concurrency, lease=timedelta(seconds=60), poll_interval=0.05))
    started = time.perf_counter()
    marks: list[tuple[float, int]] = []
    worker.start()
    while True:
        left = await db.notifications.count_documents({"status": {"$in": ["pending", "sending"]}})
        marks.append((time.perf_counter() - started, args.entries - left))
        if left == 0:
            break
        await asyncio.sleep(0.5)
    drain = time.perf_counter() - started
    await worker.stop()
    sent = await db.notifications.count_documents({"status": "sent"})
    # Steady rate: the middle 80 % of the drain, without start-up and tail.
    lo = next(m for m in marks if m[1] >= args.entries * 0.1)
    hi = next(m for m in marks if m[1] >= args.entries * 0.9)
    steady = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else args.entries / drain
    await client.drop_database("bench_notify")
    await client.close()
    http.close()
    return {"entries": args.entries, "concurrency": args.concurrency, "rate_limit": args.rate,
            "sent": sent, "drain_seconds": round(drain, 2), "messages_per_second": round(args.entries / drain, 1),
            "steady_messages_per_second": round(steady, 1), "retried": worker.stats.retried}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s limit; 0: none")
    args = parser.parse_args()
    from lottery.storage.engine import EmbeddedEngine

    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    fake = subprocess.Popen([sys.executable, "-c", FAKE.format(root=ROOT)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(fake.stdout.readline())
        result = asyncio.run(run(args, uri, f"http://127.0.0.1:{port}"))
        fake.stdin.write("\n")
        fake.stdin.flush()
        delivered, unique = map(int, fake.stdout.readline().split())
        result.update(delivered=delivered, delivered_once=delivered == unique == args.entries)
    finally:
        fake.kill()
        engine.stop()
    print(f"{result['entries']} entries, concurrency {result['concurrency']}: drained in "
          f"{result['drain_seconds']} s, {result['messages_per_second']} msg/s overall, "
          f"{result['steady_messages_per_second']} msg/s steady; delivered once each: {result['delivered_once']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
