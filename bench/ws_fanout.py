"""Websocket fan-out: N clients wait on one gift; its draw reaches every one of them.

The server (the real app, in this process, on the embedded engine) and the clients (two child
processes by default, real websockets over loopback) run apart. N members joined one timed gift (written in
bulk: setup, not measured); each client authenticates with its own login key, subscribes and
waits. Then the sender opens the gift early (the real draw, in the server process), and every
client records when its `opened` frame arrived. Latency is measured from the draw's commit
(`opened_at`, written in the same update that finishes the gift) to each receipt.

    python bench/ws_fanout.py [--clients 5000] [--polling]

Reports p50/p99/max latency, clients that missed the result (must be 0), when the server had
queued the last frame (the rest of the client-side latency is the client process reading 10,000
sockets on the same two cores), and server memory per connection (RSS growth over N, measured once every client is subscribed). Last line: one
JSON object with the figures."""
import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import resource
import secrets
import sys
import time
import tracemalloc
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import beacons  # noqa: E402  (the local drand stand-in and a receipt key)


def raise_fd_limit(needed: int) -> int:
    """The hard open-files limit lifted to `needed` where this process may (root), then the soft
    one to it as the server lifts it; the resulting soft limit."""
    from server import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, needed))
        except (ValueError, OSError):
            pass
    return raise_open_files_limit()


# Connections from one source address to the server's one address and port are limited by the
# local port range (about 28,000 on Linux): the clients spread over loopback sources, so 50,000
# and more can be held.
SOURCES = 4


def rss_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- the clients (child process) ---------------------------------------------------------

async def clients(url: str, order_id: str, keys: list[str], concurrency: int, wait: float) -> None:
    """Connect and subscribe every key, say so, wait for `go`, then collect `opened` receipts."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    received: dict[int, float] = {}
    connected: dict[int, object] = {}
    snapshots = asyncio.Event()
    settled = 0
    everyone = asyncio.Event()

    def on_message(index: int, text: str | None) -> None:
        nonlocal settled
        if text is None:
            return
        # Only the receipt time matters here; parse as little as possible.
        if text.startswith('{"type":"opened"'):
            if index not in received:
                received[index] = time.time()
                if '"state":"won"' not in text and '"state":"lost"' not in text:
                    print(json.dumps({"phase": "bad_opened", "text": text[:300]}), file=sys.stderr)
                if len(received) == len(keys):
                    everyone.set()
        elif text.startswith('{"type":"snapshot"'):
            settled += 1
            if settled == len(keys):
                snapshots.set()

    semaphore = asyncio.Semaphore(concurrency)

    async def connect(index: int, key: str) -> None:
        source = f"127.0.0.{1 + index % SOURCES}"
        async with semaphore:
            for attempt in range(5):
                try:
                    connection = await websocket_connect(
                        HTTPRequest(f"{url}?login_key={key}", connect_timeout=60, request_timeout=60,
                                    network_interface=source),
                        on_message_callback=lambda text, i=index: on_message(i, text))
                    break
                except (OSError, HTTPClientError) as exc:
                    failure = exc
                    # Refused or reset, or (through nginx) a 502/504 while the process's accept
                    # queue overflows in the connect storm: a page retries after a pause too.
                    if isinstance(exc, HTTPClientError) and exc.code < 500:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))
            else:
                raise RuntimeError(f"could not connect from {source}: {failure!r}")
            connection.write_message(json.dumps({"type": "subscribe", "order_id": order_id}))
            connected[index] = connection

    started = time.perf_counter()
    await asyncio.gather(*(connect(i, k) for i, k in enumerate(keys)))
    await asyncio.wait_for(snapshots.wait(), 300)
    print(json.dumps({"phase": "subscribed", "seconds": round(time.perf_counter() - started, 2)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # go
    try:
        await asyncio.wait_for(everyone.wait(), wait)
    except asyncio.TimeoutError:
        pass
    print(json.dumps({"phase": "done", "received": received}), flush=True)
    for connection in connected.values():
        connection.close()


# ---- the server (this process) -----------------------------------------------------------

async def setup_gift(db, accounts, gifts, count: int) -> tuple[str, str, list[str]]:
    """A timed gift joined by `count` members, written in bulk (setup, not measured); (order id,
    sender id, keys)."""
    from lottery import clock
    from lottery.accounts import key_digest, member_id_for
    from lottery.fairness import pseudonym
    from lottery.storage.joins import new_join

    from lottery.gifts import GiftSpec, Item

    gift = await gifts.create(GiftSpec("fanout_sender", "timed", [Item(f"奖品{i}") for i in range(10)],
                                       open_at=clock.utcnow() + timedelta(hours=1)))
    order_id, now = gift["_id"], clock.utcnow()
    sign = gifts.admission.receipt_key.sign
    member_ids = [member_id_for(f"fanout{i}") for i in range(count)]
    keys = [secrets.token_urlsafe(32) for _ in range(count)]
    for start in range(0, count, 1000):
        part = range(start, min(start + 1000, count))
        await db.members.insert_many([{"_id": member_ids[i], "openid": f"fanout{i}", "created_at": now}
                                      for i in part])
        await db.login_keys.insert_many([{"_id": key_digest(keys[i]), "member_id": member_ids[i],
                                          "expires_at": now + timedelta(days=1)} for i in part])
        # Numbered and signed as joins are (lottery/admission.py): the draw has none to number.
        await db.joins.insert_many([{**new_join(order_id, member_ids[i], now), "sequence": i + 1,
                                     "receipt": sign(order_id, pseudonym(order_id, member_ids[i]), i + 1)["signature"]}
                                    for i in part])
    await db.gifts.update_one({"_id": order_id}, {"$set": {"joined_count": count}, "$inc": {"version": 1}})
    return order_id, gift["sender_id"], keys


class ClientFleet:
    """The load generator: `processes` child processes running `clients()`, each with its share
    of the keys (real clients are thousands of phones; one Python process reading 10,000 frames
    would be a queue of its own). Shared with bench/scale_out.py."""

    def __init__(self, url: str, order_id: str, keys: list[str], processes: int, concurrency: int,
                 wait: float) -> None:
        self.url, self.order_id, self.keys = url, order_id, keys
        self.processes, self.concurrency, self.wait = processes, concurrency, wait
        self.children: list[asyncio.subprocess.Process] = []

    async def start(self) -> float:
        """Connect and subscribe every key; the seconds the slowest process took."""
        files = []
        for part in range(self.processes):
            keys_file = os.path.join("/tmp", f"ws_fanout_{os.getpid()}_{part}.keys")
            with open(keys_file, "w") as handle:
                handle.write("\n".join(self.keys[part::self.processes]))
            files.append(keys_file)
            self.children.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--child", self.url, self.order_id, keys_file,
                "--concurrency", str(max(1, self.concurrency // self.processes)), "--wait", str(self.wait),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, limit=2 ** 26))
        seconds = 0.0
        for keys_file, child in zip(files, self.children):
            ready = json.loads(await child.stdout.readline())
            assert ready["phase"] == "subscribed", ready
            seconds = max(seconds, ready["seconds"])
            os.unlink(keys_file)
        return seconds

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    async def go(self) -> None:
        """From now on, receipts count."""
        for child in self.children:
            child.stdin.write(b"go\n")
            await child.stdin.drain()

    async def receipts(self) -> list[float]:
        """When each client got its `opened` frame (wall clock), once every process is done."""
        received = []
        for child in self.children:
            received += json.loads(await child.stdout.readline())["received"].values()
            await child.wait()
        return received

    def kill(self) -> None:
        for child in self.children:
            if child.returncode is None:
                child.kill()


class LoopLag:
    """How long the event loop went without a turn: a task that asks to wake every 5 ms notes
    each wake-up that came late, with when (a push that never yields shows as one long stall)."""

    TICK = 0.005

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []  # (wall-clock start, seconds) of each late wake-up
        self._task: asyncio.Task | None = None

    def start(self) -> "LoopLag":
        self._task = asyncio.ensure_future(self._watch())
        return self

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked, asked_wall = loop.time(), time.time()
            await asyncio.sleep(self.TICK)
            late = loop.time() - asked - self.TICK
            if late > self.TICK:
                self.stalls.append((asked_wall, late))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def longest_before(self, moment: float) -> float:
        """The longest stall that began before `moment` (wall clock)."""
        return max((late for began, late in self.stalls if began < moment), default=0.0)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, max(0, int(round(len(values) * fraction)) - 1))]


async def run(args: argparse.Namespace) -> dict:
    from lottery import clock
    from lottery import metrics
    from lottery.live.hub import LiveHub
    from lottery.storage.connection import client_for, ensure_indexes
    from lottery.storage.engine import EmbeddedEngine, free_port
    from wechat.client import WeChatClient
    from server import http_server, make_app, tune_gc
    from config import Config
    from services import build_services

    fd_limit = raise_fd_limit(args.clients + 1000)
    tune_gc()  # as server.py does
    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    mongo = client_for(uri, max_pool_size=51)
    db = mongo["bench_fanout"]
    fleet = None
    try:
        await ensure_indexes(db)
        hub = LiveHub(db, force_polling=args.polling, poll_interval=args.poll_seconds, read_timeout=30.0)
        # The connects come at once (200 in flight): their auth reads can queue past production's
        # 2.5 s budget on this engine (a page would retry); this measures the fan-out.
        app = make_app(build_services(config := Config(role="web", request_timeout=30.0, **beacons.settings()), db,
                                      wechat=WeChatClient("bench", "bench", "http://127.0.0.1:9"), hub=hub), config)
        await hub.started()
        port = free_port()
        server = http_server(app)
        server.listen(port, address="127.0.0.1", backlog=4096)
        order_id, sender_id, keys = await setup_gift(db, app.settings["accounts"], app.settings["gifts"],
                                                    args.clients)
        gc.collect()
        rss_before = rss_bytes()
        if args.memory_profile:
            tracemalloc.start()
        fleet = ClientFleet(f"ws://127.0.0.1:{port}/ws", order_id, keys, args.client_processes,
                            args.concurrency, args.wait)
        subscribe_seconds = await fleet.start()
        if args.nice_clients:  # the server's process first, as with its clients on other machines
            for pid in fleet.pids:
                os.setpriority(os.PRIO_PROCESS, pid, 19)
        await asyncio.sleep(1.0)  # let the connect storm's garbage settle
        gc.collect()
        rss_after = rss_bytes()
        if args.memory_profile:  # what stays allocated per connection, by the line that allocated it
            lines = tracemalloc.take_snapshot().statistics("lineno")
            top = lines[:25]
            tracemalloc.stop()
            print(f"{sum(stat.size for stat in lines) / args.clients:8.0f} B/connection allocated by Python in all",
                  file=sys.stderr)
            for stat in top:
                print(f"{stat.size / args.clients:8.0f} B/connection  {stat.traceback}", file=sys.stderr)
        connections, subscriptions = len(hub.connections), hub.subscription_count()
        await fleet.go()
        await asyncio.sleep(0.2)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        lag = LoopLag().start()
        asked = time.time()  # the sender's request: what the watchers wait from
        await app.settings["draws"].open_early(order_id, sender_id)
        gift = await db.gifts.find_one({"_id": order_id})
        committed = clock.as_utc(gift["opened_at"]).timestamp()
        received = await fleet.receipts()
        await lag.stop()
        # Up to the last receipt: after it the clients' processes exit and close their sockets.
        longest_stall = lag.longest_before(max(received, default=committed))
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        # The hub's own figure: commit -> it had queued the last frame (metrics.RESULT_PUSH_SECONDS).
        pushes = metrics.RESULT_PUSH_SECONDS.collect()[0].samples
        push_seconds = next(x.value for x in pushes if x.name.endswith("_sum"))
        # The hub's writing alone: first frame to last (metrics.RESULT_FANOUT_SECONDS).
        writes = metrics.RESULT_FANOUT_SECONDS.collect()[0].samples
        fanout_seconds = next(x.value for x in writes if x.name.endswith("_sum"))
        server.stop()
        await hub.stop()
        await app.settings["draws"].idle()
    finally:
        if fleet is not None:
            fleet.kill()
        await mongo.close()
        engine.stop()
    latencies = sorted(max(0.0, t - committed) for t in received)
    waits = sorted(t - asked for t in received)
    missed = args.clients - len(latencies)
    return {
        "bench": "ws_fanout", "clients": args.clients, "path": hub.mode,
        "connections_held": connections, "subscriptions": subscriptions,
        "subscribe_seconds": subscribe_seconds, "client_processes": args.client_processes, "nice_clients": args.nice_clients, "missed": missed,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        # From the sender's request to open (the draw, its beacon round and the push included).
        "request_to_receipt_p50_ms": round(percentile(waits, 0.50) * 1000, 1) if waits else None,
        "request_to_receipt_p99_ms": round(percentile(waits, 0.99) * 1000, 1) if waits else None,
        # Commit -> the server queued the last frame (it writes at once unless a socket is full).
        "server_sent_all_ms": round(push_seconds * 1000, 1),
        "fanout_ms": round(fanout_seconds * 1000, 1),
        "fanout_us_per_socket": round(fanout_seconds * 1e6 / max(1, connections), 1),
        # The longest the server's event loop went without a turn, from the draw to the last receipt
        # (the draw runs in the server's process here, and its own steps count too).
        "loop_stall_max_ms": round(longest_stall * 1000, 1),
        "server_rss_growth_mb": round((rss_after - rss_before) / 2 ** 20, 1),
        "server_kb_per_connection": round((rss_after - rss_before) / args.clients / 1024, 1),
        "fd_limit": fd_limit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200, help="connects in flight")
    parser.add_argument("--client_processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--polling", action="store_true", help="force the polling fallback")
    parser.add_argument("--nice_clients", action="store_true",
                        help="run the clients at the lowest CPU priority: the server's writing time without "
                             "sharing the two cores with 10,000 receivers (their receipts come later)")
    parser.add_argument("--memory-profile", action="store_true",
                        help="print what each held connection keeps allocated, by source line (to stderr)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the server process from the draw to the last receipt (to stderr)")
    parser.add_argument("--poll_seconds", type=float, default=0.5)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for every client's result")
    parser.add_argument("--child", nargs=3, metavar=("URL", "ORDER_ID", "KEYS_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, order_id, keys_file = args.child
        with open(keys_file) as handle:
            keys = handle.read().split("\n")
        raise_fd_limit(len(keys) + 1000)
        asyncio.run(clients(url, order_id, keys, args.concurrency, args.wait))
        return
    beacons.start_fake()  # the local drand stand-in and a receipt key, for the servers too
    beacons.start_receipt_key()
    figures = asyncio.run(run(args))
    print(f"{figures['clients']} clients on one gift ({figures['path']}): commit -> receipt "
          f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms; "
          f"missed {figures['missed']}; the server had queued every frame {figures['server_sent_all_ms']} ms "
          f"after the commit")
    print(f"from the sender's request to open: p50 {figures['request_to_receipt_p50_ms']} ms, "
          f"p99 {figures['request_to_receipt_p99_ms']} ms")
    print(f"the hub wrote the result to its {figures['connections_held']} watchers in {figures['fanout_ms']} ms "
          f"({figures['fanout_us_per_socket']} us a socket); the server's loop stalled {figures['loop_stall_max_ms']} ms "
          f"at most from the draw to the last receipt")
    print(f"server memory: +{figures['server_rss_growth_mb']} MB for {figures['connections_held']} connections "
          f"= {figures['server_kb_per_connection']} KB per connection")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
