"""Gift-lottery realtime server: the seed mini-program's API, the v1 API and the live channel,
over Tornado and MongoDB.

    python server.py [--port 8888] [--mongodb_uri ...] [--role all|web|scheduler]   # see --help
    python server.py create-owner NAME [--mongodb_uri ...]   # the console's first owner (password from stdin)

Without MONGODB_URI it starts the embedded MongoDB-wire engine with its data in ./data/.
Read top to bottom: the application, then running it: the configuration (config.py), this
role's services built once (services.py), started, and stopped in order."""
import asyncio
import errno
import gc
import getpass
import logging
import resource
import signal
import socket
import sys
from typing import Any, Callable, Iterable

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

import config as configuration
from config import DRAND_RELAYS, Config
from handlers import (admin, claims, console, console_shop, draws, gifts, health, legacy, openapi, orders, pages,
                      payment, profile, realtime, shop)
from handlers.access_log import log_request, redact_tornado_logs
from handlers.application import Application, InFlight
from handlers.base import NotFoundHandler, content_security_policy
from handlers.metrics import metrics_app
from handlers.pinger import Pinger
from lottery import devmode, logs
from lottery.errors import LotteryError
from lottery.operators import Operators
from lottery.storage import gifts as gift_store
from lottery.storage import operators as operator_store
from lottery.beacon import Beacon
from lottery.storage.connection import Retention, client_for, database_name, ensure_indexes
from lottery.storage.data_dir_lock import DataDirInUse
from lottery.storage.engine import EmbeddedEngine
from services import Services, build_services
from relays.drand import relay_fetcher
from wechatpay.client import WeChatPayClient

log = logging.getLogger("gift_lottery")

QUIET_SECONDS = 0.5  # at shutdown: no request for this long, and the connections left are idle
DRAW_GRACE_SECONDS = 5.0  # at shutdown: a draw takes well under this; one that has not finished is handed over


# The application

# The largest request body the HTTP server reads at all; a longer one is answered with a bare
# 400 and the connection is closed. JSON handlers refuse bodies over 64 KiB with a clear error.
MAX_BODY_BYTES = 1024 * 1024


# A process out of descriptors stops accepting for this long, then tries again.
ACCEPT_PAUSE_SECONDS = 0.5
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def accept_with_pauses(sock: socket.socket, callback: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
    """Tornado's `add_accept_handler`, except when the process (or the system) is out of
    descriptors: Tornado's handler then fails on every turn of the loop, spinning a core and
    logging each failure, while the connection stays queued. Here accepting pauses for
    ACCEPT_PAUSE_SECONDS with one warning, the connections wait in the listen queue, and it
    resumes once descriptors may be free. Returns the function that stops accepting."""
    io_loop = IOLoop.current()
    removed, paused = False, None

    def accept(fd: socket.socket, events: int) -> None:
        nonlocal paused
        for _ in range(128):  # as Tornado: a bounded burst, then other work gets a turn
            if removed:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in OUT_OF_DESCRIPTORS:
                    raise
                io_loop.remove_handler(sock)
                paused = io_loop.call_later(ACCEPT_PAUSE_SECONDS, resume)
                log.warning("accepting paused for %.1f s: %s (open files: at most %d); connections wait",
                            ACCEPT_PAUSE_SECONDS, exc.strerror, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
                return
            callback(connection, address)

    def resume() -> None:
        nonlocal paused
        paused = None
        if not removed:
            io_loop.add_handler(sock, accept, IOLoop.READ)

    def stop() -> None:
        nonlocal removed
        removed = True
        if paused is not None:
            io_loop.remove_timeout(paused)
        io_loop.remove_handler(sock)

    io_loop.add_handler(sock, accept, IOLoop.READ)
    return stop


class ProductionHTTPServer(HTTPServer):
    """Tornado's HTTP server, accepting with `accept_with_pauses`."""

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:  # as TCPServer.add_sockets, which `stop()` undoes
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = accept_with_pauses(sock, self._handle_connection)


def http_server(app: web.Application, idle_timeout: float = 30.0, body_timeout: float = 60.0) -> HTTPServer:
    """The HTTP server as production runs it; the tests serve their apps with this too.
    `idle_timeout` bounds the wait for a request's headers, from the connection or the end of
    the previous request (a slow or half-sent request, an idle keep-alive connection: Tornado
    has one deadline for both); `body_timeout` the wait for its body. Tornado's own log lines
    lose addresses and quoted input (handlers/base.py)."""
    redact_tornado_logs()
    return ProductionHTTPServer(app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=idle_timeout,
                                body_timeout=body_timeout)


def stop_listening(server: HTTPServer, sockets: list) -> None:
    """Stop accepting, without resetting the connections the kernel already accepted for us:
    they are taken from each socket's queue and served first (closing a listening socket
    resets what is queued in it, and a proxy that had sent a POST there would not retry it)."""
    for sock in sockets:
        while True:
            try:
                connection, address = sock.accept()
            except (BlockingIOError, OSError):
                break
            server._handle_connection(connection, address)  # Tornado's own accept path
    server.stop()


def awaiting_first_request(server: HTTPServer, in_flight: InFlight) -> int:
    """Connections accepted before the shutdown whose first request has not arrived yet (a busy
    or distant client may take longer than QUIET_SECONDS to send it after connecting)."""
    return sum(1 for connection in list(server._connections)  # Tornado keeps no public list
               if connection.stream not in in_flight.streams_with_requests and not connection.stream.closed())


async def finish_requests(server: HTTPServer, in_flight: InFlight, deadline: float) -> None:
    """Let the requests under way finish, and those on connections already accepted arrive (a
    connection is not a request until its headers are read): done once no request has been in
    flight for QUIET_SECONDS. Then the remaining connections, idle ones, are closed."""
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    while loop.time() < deadline:
        if in_flight.count:
            await in_flight.idle(timeout=deadline - loop.time())
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= QUIET_SECONDS and not awaiting_first_request(server, in_flight):
            break
        else:
            await asyncio.sleep(0.05)
    if in_flight.count:
        log.warning("%d requests still unanswered at the shutdown timeout", in_flight.count)
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=max(0.1, deadline - loop.time()))
    except asyncio.TimeoutError:
        pass


def make_app(services: Services, config: Config, demo_gifts: list[dict] = ()) -> web.Application:
    """The web application over services built once (services.py), reached by the handlers as
    properties (handlers/services.py). No globals, so tests build as many as they like."""
    routes = [
        *legacy.default_handlers,
        *gifts.default_handlers,
        *draws.default_handlers,
        *shop.default_handlers,
        *orders.default_handlers,
        *payment.default_handlers,
        *claims.default_handlers,
        *admin.default_handlers,
        *profile.default_handlers,
        *health.default_handlers,
        *pages.default_handlers,
        (r"/media/(.*)", pages.StaticHandler, {"path": config.media_dir}),
        *console.default_handlers,
        *console_shop.default_handlers,
        *realtime.default_handlers,
        *openapi.default_handlers,
        (r".*", NotFoundHandler),
    ]
    return Application(
        routes, log_function=log_request, admin_token=config.admin_token, dev=config.development,
        # The console's pages (handlers/console.py); its XSRF check is its own, not app-wide.
        template_path=console.TEMPLATES, xsrf_cookie_kwargs={"path": "/admin"},
        console_address_header=config.console_address_header,
        demo_gifts=list(demo_gifts), allowed_hosts=config.host_names, request_timeout=config.request_timeout,
        content_security_policy=content_security_policy(config.images),
        realtime=realtime.RealtimeOptions(
            max_subscriptions=config.ws_max_subscriptions, allowed_origins=configuration.comma_list(config.ws_origins)),
        pinger=Pinger(config.ws_ping_interval, config.ws_ping_timeout),
        **services.by_name())


def make_health_app(services: Services, config: Config) -> web.Application:
    """What a scheduler-role process serves: its health and readiness, nothing else."""
    return Application([*health.default_handlers, (r".*", NotFoundHandler)],
                       log_function=log_request, health=services.health, request_timeout=config.request_timeout)


def tune_gc() -> None:
    """Fewer garbage collections: with 10,000 websockets a full collection walks millions of
    objects (~100 ms), and a result's fan-out allocates enough to trigger several. Measured in
    bench/ws_fanout.py: 5,000 clients, p99 from 0.9 s to 0.33 s."""
    gc.set_threshold(50_000, 20, 100)
    gc.freeze()  # what exists at startup is never garbage


def raise_open_files_limit() -> int:
    """Lift this process's soft open-files limit to its hard one, as far as the system allows;
    the soft limit after. Every websocket is a descriptor, and a shell's default soft limit
    (often 1,024) would cap a web process at about a thousand waiting pages."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 1_048_576) if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def listening_urls(sockets: list) -> list[str]:
    """Where the server really listens, one URL per bound socket."""
    urls = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return urls


# Running

def local_wechatpay(port: int, appid: str) -> tuple[object, WeChatPayClient]:
    """--dev/--demo without WeChat Pay settings: the local stand-in, whose real signed notifies
    reach this server's notify route. Imported here only: it is never part of production."""
    from fakes.wechatpay import FakeWeChatPay

    fake = FakeWeChatPay(appid=appid or "wx_dev_appid", refund_delay=2.0).start()
    base = f"http://127.0.0.1:{port}/api/payment/wechat"
    return fake, WeChatPayClient(fake.client_config(f"{base}/notify", f"{base}/refund-notify"))


def local_beacon(config: Config) -> tuple[object, Beacon]:
    """--dev/--demo with drand's public relays left as they are: the local stand-in chain
    (fakes/beacon.py), so a draw needs no internet. Imported here only: never part of production."""
    from fakes.beacon import FakeBeacon

    fake = FakeBeacon(period=0.5).start()
    log.info("beacon: the local stand-in chain %s at %s (not drand quicknet)", fake.chain.chain_hash,
             fake.relay_url(0))
    return fake, Beacon(fake.chain, fake.relay_urls, relay_fetcher(config.beacon_timeout))


async def demo_data(services: Services) -> list[dict]:
    """--demo: a demo shop and one demo gift per opening method."""
    await devmode.create_demo_catalogue(services.catalogue)
    return await devmode.create_demo_gifts(services.gifts, services.accounts)


async def serve(config: Config, uri: str, engine: EmbeddedEngine | None = None) -> None:
    """Build this role's services once, listen, run until SIGINT/SIGTERM, then stop in order.
    The embedded engine, if any, is supervised meanwhile (started again if it dies)."""
    supervision = asyncio.create_task(engine.supervise()) if engine is not None else None
    # The realtime change stream holds one pooled connection for good: room above it.
    client = client_for(uri, max_pool_size=51)
    db = client[database_name(uri)]
    notifications_kept, outbox_kept = config.retention
    await ensure_indexes(db, Retention(notifications=notifications_kept, outbox=outbox_kept))
    await gift_store.adopt_claimant_maps(db)  # gifts stored by an earlier version
    wechatpay_fake = payments = None
    if config.development and config.wechatpay() is None:
        wechatpay_fake, payments = local_wechatpay(config.port, config.wechat_appid)
    beacon = None
    if config.development and not config.beacon_chain and config.beacon_relays == ",".join(DRAND_RELAYS):
        _beacon_fake, beacon = local_beacon(config)
    services = build_services(config, db, payments=payments, wechatpay_fake=wechatpay_fake, beacon=beacon)
    if config.web_role:
        app = make_app(services, config, await demo_data(services) if config.demo else [])
    else:
        app = make_health_app(services, config)

    tune_gc()
    open_files = raise_open_files_limit()
    server = http_server(app, config.http_idle_timeout, config.http_body_timeout)
    sockets = bind_sockets(config.port, config.listen_address)
    server.add_sockets(sockets)
    urls = listening_urls(sockets)
    log.info("%s role listening on %s (open files: at most %s)", config.role, ", ".join(urls), open_files)
    for demo in app.settings.get("demo_gifts", []):
        print(f"demo gift ({demo['label']}): {urls[0]}/gift/{demo['order_id']}", flush=True)
    if config.metrics_port:
        metrics_app().listen(config.metrics_port, address=config.metrics_address)
        log.info("metrics on http://%s:%d/metrics", config.metrics_address, config.metrics_port)
    for part in services.background():
        part.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    deadline = loop.time() + config.shutdown_timeout
    log.info("shutting down: no new connections; %.0f s to finish what is under way", config.shutdown_timeout)
    services.health.shutting_down = True  # /readyz says so
    stop_listening(server, sockets)  # new connections are refused: a proxy sends them elsewhere
    server.conn_params.no_keep_alive = True  # answers close their connections
    if services.hub is not None:
        await services.hub.stop()  # closes the websockets (1001): clients reconnect to another process
    await finish_requests(server, app.settings["in_flight"], deadline)
    await stop_work(services, deadline)
    if wechatpay_fake is not None:
        wechatpay_fake.stop()
    if supervision is not None:
        supervision.cancel()  # main() stops the engine itself, last, once the loop is done
    log.info("shut down")


async def stop_work(services: Services, deadline: float) -> None:
    """The work under way finishes or is handed over, each step within what is left of the
    timeout whatever the database does (it may be the reason for the shutdown)."""
    loop = asyncio.get_running_loop()

    def left(spare: float = 0.0) -> float:
        return max(0.1, deadline - loop.time() - spare)

    draws, notifier = services.draws, services.notifier
    steps = [
        ("scheduler", services.scheduler and services.scheduler.stop),  # the leader lease goes to a standby now
        ("draws", lambda: draws.idle(timeout=min(left(2), DRAW_GRACE_SECONDS))),
        ("draw leases", draws.hand_over),  # what did not finish, another process resumes at once
        ("notifications", notifier and (lambda: notifier.stop(grace=left(1)))),
        ("refunds", services.refunder and services.refunder.stop),
        ("backlogs", services.backlogs and services.backlogs.stop),
        ("database client", services.db.client.close),
    ]
    for name, step in steps:
        if not step:
            continue
        try:
            await asyncio.wait_for(step(), timeout=left())
        except Exception as exc:  # a step that fails or times out must not keep the others from running
            log.warning("shutdown: %s did not finish (%s)", name, type(exc).__name__)


def read_password() -> str:
    """The new owner's password: typed twice at a terminal, or one line of stdin (a script)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("the passwords differ")
        return password
    return sys.stdin.readline().rstrip("\n")


async def create_owner(uri: str, name: str, password: str) -> None:
    """The first owner of the console (or another, or one who lost theirs: a new name)."""
    client = client_for(uri)
    try:
        db = client[database_name(uri)]
        await operator_store.ensure_indexes(db)  # the name's uniqueness, before the first account
        created = await Operators(db).create(name, password, "owner")
    except LotteryError as exc:
        raise SystemExit(exc.message) from None
    finally:
        await client.close()
    print(f"owner {created['name']} created")


def main() -> None:
    # `python server.py create-owner NAME [options]`: the console's first owner, never a default password.
    owner = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "create-owner" else None
    if owner is not None:
        del sys.argv[1:3]
    config = configuration.load()
    logs.configure(config.log_format)
    if config.development:
        log.warning("!!! DEVELOPMENT MODE: anyone can sign in as anyone at /api/dev/login. "
                    "Never run --dev or --demo in production. !!!")
    engine = None
    uri = config.mongodb_uri
    if not uri:
        engine = EmbeddedEngine(config.data_dir)
        try:
            uri = engine.start()  # on the main thread: the engine's guard stops it when this thread ends
        except DataDirInUse as exc:
            raise SystemExit(str(exc)) from None
    try:
        if owner is not None:
            asyncio.run(create_owner(uri, owner, read_password()))
        else:
            asyncio.run(serve(config, uri, engine))
    finally:
        if engine is not None:
            engine.stop()


if __name__ == "__main__":
    main()
