"""Scale-out: the production layout on one machine, with 1, 2 and 3 web processes.

For each count of web processes: a fresh embedded engine, that many
`server.py --role=web` processes and one `--role=scheduler`, behind nginx running
deploy/nginx.conf (tests/deployment.py, as tests/deploy runs it). Everything goes through nginx:

- joins: U members log in, then join one timed gift at concurrency C (bench/join_storm.py's
  load process): joins/s and latency;
- push: N members who joined another timed gift (written in bulk, as bench/ws_fanout.py does)
  wait on websockets (ws_fanout's client fleet, two processes), which nginx spreads over the web
  processes; the sender opens the gift early (the draw runs in the web process nginx picks), and
  each client's receipt of its `opened` frame is timed from the draw's commit (`opened_at`, as
  ws_fanout measures it): p50/p99/max, and clients that missed it (must be 0);
- CPU: the seconds each kind of process used during each phase, divided by the phase's length,
  so the figures say how many of the machine's cores each kind kept busy.

    python bench/scale_out.py [--webs 1,2,3] [--rounds 3] [--users 2000] [--concurrency 50] [--clients 3000]

Each layout is measured `--rounds` times, the rounds interleaved; the summary gives the median and
the range. Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import re
import resource
import sys
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import beacons  # noqa: E402  (the local drand stand-in and a receipt key)

from bench.join_storm import LoadProcess  # noqa: E402
from bench.ws_fanout import ClientFleet, percentile, raise_fd_limit, setup_gift  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def machine_busy_seconds() -> float:
    """CPU the whole machine has spent busy (all cores, every process), from /proc/stat."""
    with open("/proc/stat") as handle:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, handle.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (nginx's workers)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except OSError:
            continue
    return found


class CpuMeter:
    """CPU used between `start()` and `stop()`, in cores: by groups of running processes, as
    `load` by the load generators (this process's children that end before `stop()`, waited
    for: their share is their total, as reaped, less what they had used at `start()`), and as
    `others` by everything else on the machine (other people's work: a noisy measurement)."""

    def __init__(self, groups: dict[str, list[int]], load: list[int]) -> None:
        self.groups, self.load = groups, load

    def _read(self) -> dict[str, float]:
        return {**{name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()},
                "machine": machine_busy_seconds()}

    @staticmethod
    def _reaped() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.before, self.reaped, self.started = self._read(), self._reaped(), time.monotonic()
        self.load_before = sum(cpu_seconds(pid) for pid in self.load)

    def stop(self) -> dict[str, float]:
        after, seconds = self._read(), time.monotonic() - self.started
        used = {name: after[name] - self.before[name] for name in after}
        used["load"] = self._reaped() - self.reaped - self.load_before
        used["others"] = max(0.0, used.pop("machine") - sum(used.values()))
        return {name: round(value / seconds, 2) for name, value in used.items()}


async def one_layout(uri: str, wechat_url: str, webs: int, args: argparse.Namespace) -> dict:
    """The joins and the push through nginx in front of `webs` web processes."""
    from lottery import clock
    from lottery.accounts import Accounts
    from lottery.gifts import GiftSpec, Gifts, Item
    from lottery.storage.connection import client_for, ensure_indexes
    from tests.api import Api
    from tests.deployment import Deployment
    from tests.servers import uri_with_db

    name = f"scale_out_{webs}"
    deployment = Deployment(uri_with_db(uri, name), wechat_url, webs=webs, schedulers=1)
    mongo = client_for(uri)
    db = mongo[name]
    api = Api(deployment.base_url)
    fleet = None
    try:
        deployment.start()
        await ensure_indexes(db)
        accounts = Accounts(db, None)
        gifts = Gifts(db, accounts, beacons.receipt_key())
        nginx = deployment.nginx.process.pid
        groups = {"engine": [args.engine_pid], "web": [w.process.pid for w in deployment.webs],
                  "scheduler": [s.process.pid for s in deployment.schedulers],
                  "nginx": [nginx, *children(nginx)], "bench": [os.getpid()]}

        # Joins: one hot timed gift.
        hot = await gifts.create(GiftSpec("scale_sender", "timed", [Item("奖品")],
                                          open_at=clock.utcnow() + timedelta(hours=1)))
        load = await LoadProcess(deployment.base_url, hot["_id"], args.users, args.concurrency,
                                 f"scale{webs}_").start()
        meter = CpuMeter(groups, [load.pid])
        meter.start()
        joined = await load.go()
        await load.close()
        join_cores = meter.stop()
        latencies = sorted(joined["latencies"])

        # The push: every client waits on one gift, then its sender opens it.
        marks = [len(w.log_text()) for w in deployment.webs]
        order_id, sender_id, keys = await setup_gift(db, accounts, gifts, args.clients)
        sender_key = await accounts.issue_key(sender_id)
        fleet = ClientFleet(f"ws://127.0.0.1:{deployment.nginx.port}/ws", order_id, keys,
                            args.client_processes, args.ws_concurrency, args.wait)
        subscribe_seconds = await fleet.start()
        spread = [w.log_text()[mark:].count("101 GET /ws") for w, mark in zip(deployment.webs, marks)]
        await asyncio.sleep(1.0)  # the connect storm's garbage settles
        await fleet.go()
        meter = CpuMeter(groups, fleet.pids)
        meter.start()
        status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=sender_key)
        assert status == 200, (status, answer)
        gift = await db.gifts.find_one({"_id": order_id})
        committed = clock.as_utc(gift["opened_at"]).timestamp()
        received = await fleet.receipts()
        push_cores = meter.stop()
        pushed = sorted(max(0.0, t - committed) for t in received)
        # Each web process logs when it had queued the result to its last subscriber.
        sent = [[int(n), float(ms)] for w, mark in zip(deployment.webs, marks)
                for n, ms in re.findall(rf"gift {order_id}: result pushed to (\d+) subscribers in \d+ ms, (\d+) ms",
                                        w.log_text()[mark:])]
    finally:
        if fleet is not None:
            fleet.kill()
        api.close()
        deployment.stop()
        deployment.nginx.remove()
        for process in deployment.processes:
            os.unlink(process.log.name)
        await mongo.drop_database(name)
        await mongo.close()
    return {
        "webs": webs,
        "joins_per_s": round(args.users / joined["elapsed"], 1), "join_codes": joined["codes"],
        "join_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "join_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "join_cpu_cores": join_cores,
        "clients": args.clients, "connections_per_web": spread, "subscribe_seconds": subscribe_seconds,
        "missed": args.clients - len(pushed),
        "push_p50_ms": round(percentile(pushed, 0.50) * 1000, 1) if pushed else None,
        "push_p99_ms": round(percentile(pushed, 0.99) * 1000, 1) if pushed else None,
        "push_max_ms": round(pushed[-1] * 1000, 1) if pushed else None,
        # [subscribers, ms from the commit until queued] per web process (the rest is the clients' reading).
        "server_sent_all": sent,
        "push_cpu_cores": push_cores,
    }


async def run(args: argparse.Namespace) -> dict:
    from lottery.storage.engine import EmbeddedEngine
    from fakes.wechat import FakeWeChat

    fd_limit = raise_fd_limit(args.clients * 3 + 1000)  # inherited by the servers and nginx
    fake = FakeWeChat().start()
    runs = []
    try:
        # Rounds interleave the layouts, so a burst of other work on the machine lands on one
        # round of each rather than on every round of one.
        for round_no in range(1, args.rounds + 1):
            for webs in args.webs:
                # A fresh engine for each layout: what one left behind (its change log) must not
                # slow the next.
                engine = EmbeddedEngine(":memory:")
                uri = engine.start()
                args.engine_pid = engine.process.pid
                load_average = round(os.getloadavg()[0], 2)
                try:
                    runs.append({"round": round_no, "load_average": load_average,
                                 **await one_layout(uri, fake.url, webs, args)})
                finally:
                    engine.stop()
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    finally:
        fake.stop()
    summary = []
    for webs in args.webs:
        mine = [r for r in runs if r["webs"] == webs]
        summary.append({"webs": webs, **{key: median_and_range([r[key] for r in mine]) for key in
                                         ("joins_per_s", "join_p99_ms", "push_p50_ms", "push_p99_ms")},
                        "missed": sum(r["missed"] for r in mine)})
    return {"bench": "scale_out", "users": args.users, "concurrency": args.concurrency, "clients": args.clients,
            "rounds": args.rounds, "cores": os.cpu_count(), "fd_limit": fd_limit, "summary": summary, "runs": runs}


def median_and_range(values: list[float]) -> list[float]:
    """[median, lowest, highest]."""
    ordered = sorted(values)
    return [ordered[len(ordered) // 2], ordered[0], ordered[-1]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webs", default="1,2,3", help="counts of web processes to measure, comma-separated")
    parser.add_argument("--users", type=int, default=2000, help="members joining the hot gift")
    parser.add_argument("--concurrency", type=int, default=50, help="joins in flight")
    parser.add_argument("--clients", type=int, default=3000, help="websocket clients waiting on one gift")
    parser.add_argument("--client_processes", type=int, default=2, help="websocket load generator processes")
    parser.add_argument("--ws_concurrency", type=int, default=200, help="websocket connects in flight")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for every client's result")
    parser.add_argument("--rounds", type=int, default=3, help="times each layout is measured (interleaved)")
    args = parser.parse_args()
    args.webs = [int(n) for n in args.webs.split(",")]
    beacons.start_fake()  # the local drand stand-in and a receipt key, for the servers too
    beacons.start_receipt_key()
    figures = asyncio.run(run(args))
    for r in figures["runs"]:
        print(f"round {r['round']}, {r['webs']} web (load average {r['load_average']}): {r['joins_per_s']} joins/s "
              f"(p50 {r['join_p50_ms']} ms, p99 {r['join_p99_ms']} ms); push to {r['clients']} clients "
              f"{r['connections_per_web']}: p50 {r['push_p50_ms']} ms, p99 {r['push_p99_ms']} ms, "
              f"missed {r['missed']}; queued by each process after {[ms for _, ms in r['server_sent_all']]} ms")
        print(f"   cores busy, joins: {r['join_cpu_cores']}; push: {r['push_cpu_cores']}")
    for s in figures["summary"]:
        print(f"{s['webs']} web, median [lowest, highest] of {figures['rounds']}: joins/s {s['joins_per_s']}, "
              f"join p99 {s['join_p99_ms']} ms, push p50 {s['push_p50_ms']} ms, push p99 {s['push_p99_ms']} ms, "
              f"missed {s['missed']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
