"""Expiry benchmark: what the embedded engine's TTL sweep does to everything else.

An engine on disk (as `scripts/serve.sh` keeps it) holds N final notification entries, their
`final_at` spread over the last year, with the real indexes (90 days kept: about three quarters
expired). Then, for `--seconds` (two of the engine's once-a-minute sweeps), a probe writes and
reads one small document every 50 ms and records how long each pair waited. The engine's sweep
reads every document of a collection with a TTL index, and deletes the expired ones, while it
holds every other operation (its `storage.py`, `prune_ttl`).

    python bench/expiry.py [--entries 200000] [--seconds 135]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lottery import clock  # noqa: E402
from lottery.storage.connection import Retention, client_for, ensure_indexes  # noqa: E402
from lottery.storage.engine import EmbeddedEngine  # noqa: E402

PROBE_EVERY = 0.05  # seconds


async def probe(db, seconds: float) -> list[tuple[float, float]]:
    """(when, how long) of each write-and-read pair, one every PROBE_EVERY for `seconds`."""
    waits = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        before = time.monotonic()
        await db.probe.insert_one({"n": len(waits)})
        await db.probe.find_one({"n": len(waits)})
        waits.append((before - started, time.monotonic() - before))
        await asyncio.sleep(PROBE_EVERY)
    return waits


async def run(args: argparse.Namespace, data_dir: str) -> dict:
    engine = EmbeddedEngine(data_dir)
    client = client_for(engine.start())
    try:
        db = client["bench_expiry"]
        now = clock.utcnow()
        year = timedelta(days=365)
        for start in range(0, args.entries, 1000):
            await db.notifications.insert_many([
                {"_id": f"o{i}:m{i}:gift_lost", "order_id": f"o{i}", "status": "sent", "touser": f"openid{i}",
                 "template_id": "tpl", "values": {"thing1": {"value": "礼物"}, "time2": {"value": "2026-01-01"}},
                 "attempts": 1, "final_at": now - year + year * i / args.entries}
                for i in range(start, min(start + 1000, args.entries))])
        # The indexes last, as on a database the entries expired on while no server ran.
        await ensure_indexes(db, Retention(notifications=timedelta(days=90), outbox=timedelta(days=30)))
        expired = await db.notifications.count_documents({"final_at": {"$lt": now - timedelta(days=90)}})
        waits = await probe(db, args.seconds)
        left = await db.notifications.count_documents({})
    finally:
        await client.close()
        engine.stop()
    stalls = [(round(at, 1), round(1000 * wait)) for at, wait in waits if wait > 0.3]
    waits = sorted(wait for _, wait in waits)
    return {"bench": "expiry", "entries": args.entries, "expired": expired, "left": left,
            "seconds": args.seconds, "probes": len(waits), "probe_p50_ms": round(1000 * statistics.median(waits), 1),
            "probe_p99_ms": round(1000 * waits[int(len(waits) * 0.99) - 1], 1),
            "probe_max_ms": round(1000 * waits[-1], 1),
            "probes_over_1_s": sum(w > 1 for w in waits), "stalls_over_300_ms_at_s_ms": stalls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=135.0, help="how long the probe runs (two engine sweeps)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-expiry-", dir=ROOT) as data_dir:
        figures = asyncio.run(run(args, os.path.join(data_dir, "data")))
    print(f"{figures['expired']} of {figures['entries']} entries expired, "
          f"{figures['left']} entries left after {figures['seconds']:.0f} s; a probe's write and read: "
          f"p50 {figures['probe_p50_ms']} ms, p99 {figures['probe_p99_ms']} ms, max {figures['probe_max_ms']} ms, "
          f"{figures['probes_over_1_s']} over 1 s; the waits over 300 ms (at s, ms): {figures['stalls_over_300_ms_at_s_ms']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
