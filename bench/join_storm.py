"""Join storm: U members join one hot gift with concurrency C.

The server (the real app, in this process, with PyMongo command monitoring) and the load
generator (a child process, real HTTP over loopback) run apart. The server admits the joins of
the gift in steps (group commit, lottery/admission.py); its figures say how many joins a step
carried. Then the same joins go through the domain alone (no HTTP) at the same concurrency,
side by side: the ratio is what HTTP and the handlers cost.

    python bench/join_storm.py [--users 2000] [--concurrency 50] [--method full|timed] [--keys_elsewhere]

The members log in through the same server, which then knows their keys (a key this process
issued is answered from memory); `--keys_elsewhere` measures members who logged in at another
process of a deployment, whose keys this one reads once each (batched).

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import beacons  # noqa: E402  (the local drand stand-in and a receipt key)

from pymongo import monitoring  # noqa: E402


class CommandCounter(monitoring.CommandListener):
    """Counts database round trips (commands sent) by name."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts[event.command_name] = self.counts.get(event.command_name, 0) + 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def total(self) -> int:
        return sum(self.counts.values())


async def load(url: str, order_id: str, users: int, concurrency: int, prefix: str) -> None:
    """Child process: log users in, then fire their joins; print latencies as JSON."""
    from tests.api import Api

    api = Api(url, max_clients=concurrency)
    semaphore = asyncio.Semaphore(concurrency)

    async def limited(coro_fn, *args):
        async with semaphore:
            return await coro_fn(*args)

    keys = await asyncio.gather(*(limited(api.login, f"{prefix}{i}") for i in range(users)))
    print(json.dumps({"phase": "logged_in"}), flush=True)
    sys.stdin.readline()  # the parent resets its counters, then says go

    latencies: list[float] = []
    codes: dict[str, int] = {}

    async def one(key: str) -> None:
        async with semaphore:
            start = time.perf_counter()
            answer = await api.join_gift(key, order_id)
            latencies.append(time.perf_counter() - start)
            codes[answer["code"]] = codes.get(answer["code"], 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one(k) for k in keys))
    elapsed = time.perf_counter() - start
    print(json.dumps({"phase": "done", "elapsed": elapsed, "latencies": latencies, "codes": codes}), flush=True)


class LoadProcess:
    """`load` in a child process: `start()` returns once its users are logged in, `go()` fires
    their joins and returns its figures (elapsed, latencies, codes). Shared with bench/scale_out.py."""

    def __init__(self, url: str, order_id: str, users: int, concurrency: int, prefix: str) -> None:
        self.args = [sys.executable, __file__, "--load", url, order_id, "--users", str(users),
                     "--concurrency", str(concurrency), "--prefix", prefix]
        self.child: asyncio.subprocess.Process | None = None

    async def start(self) -> "LoadProcess":
        self.child = await asyncio.create_subprocess_exec(*self.args, limit=1 << 24, stdin=subprocess.PIPE,
                                                          stdout=subprocess.PIPE, cwd=ROOT)
        await self.child.stdout.readline()  # logged in
        return self

    @property
    def pid(self) -> int:
        return self.child.pid

    async def go(self) -> dict:
        """The joins; the child has printed its figures (it may still be exiting)."""
        self.child.stdin.write(b"go\n")
        await self.child.stdin.drain()
        return json.loads(await self.child.stdout.readline())

    async def close(self) -> None:
        if self.child is not None:
            await self.child.wait()


async def domain_only(uri: str, users: int, concurrency: int, method: str) -> float:
    """The same joins through the domain alone (lottery.gifts, its group commit included), no
    HTTP: what the database and the rules allow, for the ratio."""
    from lottery.accounts import Accounts
    from lottery.gifts import Gifts
    from lottery.storage.connection import client_for, ensure_indexes

    client = client_for(uri)
    db = client["bench_domain"]
    await client.drop_database("bench_domain")
    await ensure_indexes(db)
    gifts = Gifts(db, Accounts(db, None), beacons.receipt_key())
    gift = await gifts.create(gift_spec(method, users))
    members = [await gifts.accounts.ensure_member(f"domain{i}") for i in range(users)]
    semaphore = asyncio.Semaphore(concurrency)

    async def one(member_id: str) -> None:
        async with semaphore:
            await gifts.join(gift["_id"], member_id)

    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in members))
    elapsed = time.perf_counter() - start
    await client.close()
    return users / elapsed


def gift_spec(method: str, users: int):
    from lottery import clock
    from lottery.gifts import GiftSpec, Item

    if method == "full":
        return GiftSpec("bench_sender", method, [Item("奖品")], open_number=users)
    return GiftSpec("bench_sender", method, [Item("奖品")], open_at=clock.utcnow() + timedelta(hours=1))


async def storm(uri: str, db_name: str, method: str, users: int, concurrency: int, keys_elsewhere: bool = False) -> dict:
    """`users` members log in, then join one new gift of `method` over HTTP at `concurrency`,
    against the real app on database `db_name` (with whatever it already holds). The load
    generator is a child process. Round trips are the server's database commands per join."""
    from lottery.storage.connection import client_for, ensure_indexes
    from lottery.storage.engine import free_port
    from wechat.client import WeChatClient
    from server import http_server, make_app
    from config import Config
    from services import build_services
    from fakes.wechat import APPID, SECRET, FakeWeChat
    from lottery.key_lookup import KeyLookup

    fake = FakeWeChat().start()
    counter = CommandCounter()
    client = client_for(uri, event_listeners=[counter])
    db = client[db_name]
    try:
        await ensure_indexes(db)
        app = make_app(build_services(config := Config(admin_token="bench", role="web", **beacons.settings()), db,
                                      wechat=WeChatClient(APPID, SECRET, fake.url)), config)
        port = free_port()
        server = http_server(app)
        server.listen(port, address="127.0.0.1")
        gift = await app.settings["gifts"].create(gift_spec(method, users))
        load = await LoadProcess(f"http://127.0.0.1:{port}", gift["_id"], users, concurrency,
                                 f"{db_name}_{method}").start()
        if keys_elsewhere:  # they logged in at another process: this one has not seen their keys
            app.settings["accounts"].keys = KeyLookup(db)
        counter.counts.clear()
        steps_before = app.settings["gifts"].admission.steps.steps
        result = await load.go()
        steps = app.settings["gifts"].admission.steps.steps - steps_before
        await load.close()
        commands = dict(counter.counts)
        server.stop()
        await app.settings["draws"].idle()
        await app.settings["hub"].stop()
    finally:
        await client.close()
        fake.stop()
    latencies = sorted(result["latencies"])
    return {
        "method": method, "users": users, "concurrency": concurrency, "codes": result["codes"],
        "joins_per_s": round(users / result["elapsed"], 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        # Commands in the server's process while the joins ran (a full gift's draw included).
        "db_round_trips_per_join": round(sum(commands.values()) / users, 3),
        "join_steps": steps, "joins_per_step": round(users / max(steps, 1), 2),
        "db_commands": commands,
    }


async def run(args: argparse.Namespace) -> dict:
    from lottery.storage.engine import EmbeddedEngine

    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    try:
        figures = await storm(uri, "bench_join", args.method, args.users, args.concurrency, args.keys_elsewhere)
        domain = await domain_only(uri, args.users, args.concurrency, args.method)
    finally:
        engine.stop()
    return {"bench": "join_storm", **figures, "keys_elsewhere": args.keys_elsewhere, "domain_only_joins_per_s": round(domain, 1),
            "ratio_to_domain_only": round(figures["joins_per_s"] / domain, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--method", choices=["full", "timed"], default="full")
    parser.add_argument("--keys_elsewhere", action="store_true",
                        help="the members logged in at another server process (their keys are read once here)")
    parser.add_argument("--load", nargs=2, metavar=("URL", "ORDER_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="storm", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        asyncio.run(load(args.load[0], args.load[1], args.users, args.concurrency, args.prefix))
        return
    beacons.start_fake()  # the local drand stand-in and a receipt key, for the servers too
    beacons.start_receipt_key()
    figures = asyncio.run(run(args))
    print(f"{figures['users']} joins at concurrency {figures['concurrency']} ({figures['method']}): "
          f"{figures['joins_per_s']}/s, p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    print(f"round trips per join: {figures['db_round_trips_per_join']} {figures['db_commands']}")
    print(f"domain only (no HTTP): {figures['domain_only_joins_per_s']}/s, ratio {figures['ratio_to_domain_only']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
