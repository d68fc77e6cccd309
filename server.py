"""Gift-lottery realtime server: the seed mini-program's API, the v1 API and the live channel,
over Tornado and MongoDB.

    python server.py [--port 8888] [--mongodb_uri ...] [--role all|web|scheduler]   # see --help

Without MONGODB_URI it starts the embedded MongoDB-wire engine with its data in ./data/.
Read top to bottom: the options, the application, then each role's parts built once, started,
and stopped in order."""
import asyncio
import gc
import logging
import os
import signal
import sys
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.options import Error as OptionError, define, options

from handlers import (admin, claims, draws, gifts, health, legacy, openapi, orders, pages, payment, profile,
                      realtime, shop)
from handlers.base import (Application, InFlight, NotFoundHandler, content_security_policy, log_request,
                           redact_tornado_logs)
from handlers.metrics import metrics_app
from lottery import devmode, logs
from lottery.accounts import Accounts
from lottery.backlogs import Backlogs
from lottery.catalogue import Catalogue
from lottery.claims import Claims
from lottery.draw import Draws
from lottery.gifts import Gifts
from lottery.health import Health
from lottery.images import WECHAT_IMAGE_HOSTS, ImageSources
from lottery.live.hub import LiveHub
from lottery.notifications import Notifications
from lottery.orders import Orders
from lottery.refunds import Refunds
from lottery.profiles import Profiles
from lottery.roster import Roster
from lottery.scheduler import Scheduler
from lottery.storage.backup import Backups
from lottery.storage.connection import Retention, client_for, database_name, ensure_indexes
from lottery.storage.data_dir_lock import DataDirInUse
from lottery.storage.engine import EmbeddedEngine
from notify.templates import ConfigError, NotifyConfig, load_config
from notify.wechat import WeChatClient
from notify.wechatpay import ConfigError as PaymentConfigError, WeChatPayClient, WeChatPayConfig
from notify.wechatpay_fake import FakeWeChatPay
from notify.refund_worker import RefundWorker
from notify.worker import Limits, NotificationWorker

log = logging.getLogger("gift_lottery")

ROLES = ("all", "web", "scheduler")
LOG_FORMATS = ("text", "json")
QUIET_SECONDS = 0.5  # at shutdown: no request for this long, and the connections left are idle
DRAW_GRACE_SECONDS = 5.0  # at shutdown: a draw takes well under this; one that has not finished is handed over

# Every option also reads the environment variable of its name in upper case (PORT, MONGODB_URI,
# ...); the command line wins. Secrets are only ever taken from there or the command line, and
# --help shows defaults, never values.
GROUP = "gift lottery server"


def option(name: str, default: object, help: str) -> None:
    """define() in this server's group, naming the environment variable in its help."""
    define(name, default=default, help=f"{help} (env {name.upper()})", group=GROUP)


option("port", default=8888, help="HTTP port")
option("address", default="",
       help="the address to listen on; unset: every interface, or 127.0.0.1 with --dev/--demo (loopback only)")
option("allowed_hosts", default="",
       help="comma-separated host names the server answers to (Host header, any port), or *; "
            "unset: any, or only localhost, 127.0.0.1 and ::1 with --dev/--demo")
option("http_idle_timeout", default=30.0,
       help="seconds a connection may take to send a request's headers, or sit idle between requests "
            "(websockets are not affected: pings watch them)")
option("http_body_timeout", default=60.0, help="seconds a request may take to send its body")
option("mongodb_uri", default="", help="MongoDB URI; unset: start the embedded engine")
option("data_dir", default="./data", help="embedded engine data folder, kept across restarts")
option("log_format", default="text", help="text, or json: one object per line (time, level, logger, message, "
       "request_id, member_id; route, status, duration_ms on access lines)")
option("shutdown_timeout", default=15.0,
       help="seconds a SIGTERM leaves for requests in flight and work under way before the process exits")
option("metrics_port", default=0, help="serve Prometheus /metrics on this port (0: off); never the public port")
option("metrics_address", default="127.0.0.1", help="where /metrics listens (0.0.0.0 for a scraper on another host)")
option("backup_dir", default="./backups", help="where POST /api/admin/backup writes the embedded engine's archives")
option("wechat_appid", default="", help="mini-program appid")
option("wechat_secret", default="", help="mini-program app secret (never printed or logged)")
option("wechat_api_base", default="https://api.weixin.qq.com", help="WeChat API base URL")
option("admin_token", default="", help="enables /api/admin/* with this bearer token (never printed)")
option("role", default="all", help="all: web and scheduler; web: HTTP only; scheduler: draws and jobs only")
option("draw_lease_seconds", default=30.0, help="how long a draw may stall before another process resumes it")
option("sweep_seconds", default=1.0, help="how often the scheduler opens overdue gifts")
option("leader_lease_seconds", default=10.0,
       help="how long a silent scheduler keeps the leadership before a standby takes over")
option("dev", default=False,
       help="development mode: browser sign-in by name, no WeChat (local database only; never in production)")
option("demo", default=False, help="development mode plus one demo gift per opening method")
option("ws_origins", default="",
       help="comma-separated browser origins allowed on /ws besides this host, or *")
option("ws_ping_interval", default=25.0, help="seconds between websocket pings")
option("ws_ping_timeout", default=10.0, help="seconds a websocket peer has to answer a ping")
option("ws_max_subscriptions", default=20, help="gifts one websocket connection may follow")
option("image_hosts", default=",".join(WECHAT_IMAGE_HOSTS),
       help="comma-separated hosts whose https images items and avatars may use (besides /static/)")
option("realtime_polling", default=False,
       help="follow gifts by polling instead of a change stream (automatic where change streams are unavailable)")
option("realtime_poll_seconds", default=0.5, help="poll interval of the realtime polling fallback")
option("login_key_days", default=30, help="login key lifetime in days")
option("keep_notifications_days", default=90.0,
       help="how long a notification entry is kept once final (sent, not subscribed, failed)")
option("keep_outbox_days", default=30.0, help="how long an outbox record is kept once done")
option("notify_config", default="",
       help="subscribe-message templates, a JSON file (or the JSON itself in NOTIFY_TEMPLATES); "
            "none: nothing is sent, see docs/notifications.md")
option("notify_rate", default=20.0, help="subscribe messages per second, per scheduler process")
option("notify_concurrency", default=4, help="subscribe-message requests in flight at once, per process")
option("notify_lease_seconds", default=60.0,
       help="how long a notification stays claimed by a process that stopped answering")
option("notify_max_attempts", default=25, help="attempts before a notification is failed")
option("notify_backoff_seconds", default=2.0,
       help="wait before a failed notification's second attempt; doubles each time, with jitter, up to 10 min")
option("order_expire_minutes", default=15.0, help="how long an unpaid order holds its stock before it is closed")
option("claim_days", default=7.0, help="how long a winner has to give an address before the item is refunded")
option("claim_reminder_hours", default=24.0, help="how long before a claim's deadline its winner is reminded")
option("refund_lease_seconds", default=60.0,
       help="how long a refund stays taken by a process that stopped answering before another sends it")
# WeChat Pay (API v3); unset WECHATPAY_MCHID: orders answer "payments are not configured", except
# with --dev/--demo, which run against the local fake.
option("wechatpay_mchid", default="", help="WeChat Pay merchant number")
option("wechatpay_apiv3_key", default="", help="WeChat Pay APIv3 key, 32 bytes (never printed or logged)")
option("wechatpay_private_key_file", default="", help="the merchant API private key (apiclient_key.pem)")
option("wechatpay_cert_serial", default="", help="the merchant API certificate's serial number")
option("wechatpay_public_key_file", default="", help="WeChat Pay public key (public-key mode, PEM)")
option("wechatpay_public_key_id", default="", help="its id, PUB_KEY_ID_... (public-key mode)")
option("wechatpay_platform_cert_files", default="", help="WeChat Pay platform certificates (comma-separated PEM files)")
option("wechatpay_api_base", default="https://api.mch.weixin.qq.com", help="WeChat Pay API base URL")
option("wechatpay_notify_url", default="",
       help="the public https URL of /api/payment/wechat/notify (http only on loopback)")
option("wechatpay_refund_notify_url", default="",
       help="the public https URL of the refund notify route (http only on loopback)")

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def apply_environment(environ: dict[str, str]) -> None:
    """Set each option from its environment variable (`--notify_rate` from NOTIFY_RATE)."""
    for name, value in options.group_dict(GROUP).items():
        raw = environ.get(name.upper())
        if raw is None:
            continue
        try:
            if isinstance(value, bool):
                if raw.strip().lower() not in TRUE + FALSE:
                    raise ValueError("expected 1/0, true/false, yes/no or on/off")
                options[name] = raw.strip().lower() in TRUE
            else:
                options[name] = type(value)(raw)
        except ValueError as exc:
            raise SystemExit(f"environment variable {name.upper()}: not a valid {type(value).__name__} ({exc})")


def command_line(argv: list[str]) -> list[str]:
    """The arguments as Tornado reads them: `--port 8888` joined into `--port=8888` (flags stay
    flags), and each value of ours checked against its option's type, for a clear message."""
    ours = options.group_dict(GROUP)
    joined: list[str] = []
    for arg in argv:
        previous = joined[-1] if joined else ""
        name = previous[2:].replace("-", "_")
        if (previous.startswith("--") and "=" not in previous and name in ours
                and not isinstance(ours[name], bool) and not arg.startswith("--")):
            joined[-1] = f"{previous}={arg}"
        else:
            joined.append(arg)
    for arg in joined[1:]:
        name, _, value = arg[2:].partition("=")
        kind = type(ours.get(name.replace("-", "_"), ""))
        if value and kind in (int, float):
            try:
                kind(value)
            except ValueError:
                raise SystemExit(f"--{name}: {value!r} is not a valid {kind.__name__} (see --help)") from None
    return joined


# The application

# The largest request body the HTTP server reads at all; a longer one is answered with a bare
# 400 and the connection is closed. JSON handlers refuse bodies over 64 KiB with a clear error.
MAX_BODY_BYTES = 1024 * 1024


def http_server(app: web.Application, idle_timeout: float = 30.0, body_timeout: float = 60.0) -> HTTPServer:
    """The HTTP server as production runs it; the tests serve their apps with this too.
    `idle_timeout` bounds the wait for a request's headers, from the connection or the end of
    the previous request (a slow or half-sent request, an idle keep-alive connection: Tornado
    has one deadline for both); `body_timeout` the wait for its body. Tornado's own log lines
    lose addresses and quoted input (handlers/base.py)."""
    redact_tornado_logs()
    return HTTPServer(app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=idle_timeout,
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
        elif loop.time() - quiet_since >= QUIET_SECONDS:
            break
        else:
            await asyncio.sleep(0.05)
    if in_flight.count:
        log.warning("%d requests still unanswered at the shutdown timeout", in_flight.count)
    try:
        await asyncio.wait_for(server.close_all_connections(), timeout=max(0.1, deadline - loop.time()))
    except asyncio.TimeoutError:
        pass


def make_app(db: AsyncDatabase, wechat: WeChatClient, admin_token: str = "", login_key_days: int = 30,
             draw_service: Draws | None = None, dev: bool = False, hub: LiveHub | None = None,
             realtime_options: realtime.RealtimeOptions | None = None, payments: WeChatPayClient | None = None,
             order_service: Orders | None = None, wechatpay_fake: FakeWeChatPay | None = None,
             claim_service: Claims | None = None, backup_dir: str = "./backups",
             images: ImageSources = ImageSources(), allowed_hosts: list[str] | None = None,
             health_service: Health | None = None) -> web.Application:
    """The web application: every service built once here (or, shared with a scheduler, given)
    and reached by the handlers as properties (handlers/base.py). No globals, so tests build as
    many as they like. `payments` None: orders answer "payments are not configured".
    `allowed_hosts` unset: any host, or only loopback names in development mode."""
    accounts = Accounts(db, wechat.code2session, timedelta(days=login_key_days))
    draw_service = draw_service or Draws(db)
    gift_service = Gifts(db, accounts, on_ready=draw_service.open_soon, images=images)
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
        *realtime.default_handlers,
        *openapi.default_handlers,
        (r".*", NotFoundHandler),
    ]
    if allowed_hosts is None:
        allowed_hosts = list(devmode.LOOPBACK_NAMES) if dev else ["*"]
    return Application(
        routes, log_function=log_request, admin_token=admin_token, dev=dev, demo_gifts=[],
        allowed_hosts=[host.strip().lower().strip("[]") for host in allowed_hosts],
        content_security_policy=content_security_policy(images),
        accounts=accounts, gifts=gift_service, draws=draw_service, profiles=Profiles(db, wechat.appid, images),
        roster=Roster(db, gift_service), notifications=Notifications(db), health=health_service or Health(db),
        catalogue=Catalogue(db, images), orders=order_service or orders_for(db, payments), payments=payments,
        claims=claim_service or Claims(db), refunds=Refunds(db, payments),
        wechatpay_fake=wechatpay_fake, backups=Backups(db.client, backup_dir), hub=hub or LiveHub(db),
        realtime=realtime_options or realtime.RealtimeOptions())


def orders_for(db: AsyncDatabase, payments: WeChatPayClient | None, expire_minutes: float = 15) -> Orders:
    """The order service over WeChat Pay (or none)."""
    config = payments.config if payments is not None else None
    return Orders(db, payments, mchid=config.mchid if config else "", appid=config.appid if config else "",
                  expire_after=timedelta(minutes=expire_minutes))


def make_health_app(health_service: Health) -> web.Application:
    """What a scheduler-role process serves: its health and readiness, nothing else."""
    return Application([*health.default_handlers, (r".*", NotFoundHandler)],
                       log_function=log_request, health=health_service)


def tune_gc() -> None:
    """Fewer garbage collections: with 10,000 websockets a full collection walks millions of
    objects (~100 ms), and a result's fan-out allocates enough to trigger several. Measured in
    bench/ws_fanout.py: 5,000 clients, p99 from 0.9 s to 0.33 s."""
    gc.set_threshold(50_000, 20, 100)
    gc.freeze()  # what exists at startup is never garbage


def payment_config() -> WeChatPayConfig | None:
    """WeChat Pay's settings, or None when WECHATPAY_MCHID is unset; SystemExit naming what is
    wrong (never a secret's value)."""
    if not options.wechatpay_mchid:
        return None
    try:
        return WeChatPayConfig.load(
            mchid=options.wechatpay_mchid, appid=options.wechat_appid, apiv3_key=options.wechatpay_apiv3_key,
            private_key_file=options.wechatpay_private_key_file, cert_serial=options.wechatpay_cert_serial,
            notify_url=options.wechatpay_notify_url, public_key_file=options.wechatpay_public_key_file,
            public_key_id=options.wechatpay_public_key_id, platform_cert_files=options.wechatpay_platform_cert_files,
            api_base=options.wechatpay_api_base, refund_notify_url=options.wechatpay_refund_notify_url)
    except PaymentConfigError as exc:
        raise SystemExit(f"WeChat Pay configuration: {exc}") from exc


def local_wechatpay(port: int, appid: str) -> tuple[FakeWeChatPay, WeChatPayConfig]:
    """--dev/--demo without WeChat Pay settings: the local fake, whose real signed notifies
    reach this server's notify route."""
    fake = FakeWeChatPay(appid=appid or "wx_dev_appid", refund_delay=2.0).start()
    base = f"http://127.0.0.1:{port}/api/payment/wechat"
    return fake, fake.client_config(f"{base}/notify", f"{base}/refund-notify")


def notify_config() -> NotifyConfig:
    """The templates from --notify_config (a file) or NOTIFY_TEMPLATES (JSON), or SystemExit."""
    try:
        return load_config(options.notify_config, os.environ.get("NOTIFY_TEMPLATES", ""))
    except ConfigError as exc:
        raise SystemExit(f"notification config: {exc}") from exc


def comma_list(text: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def listening_urls(sockets: list) -> list[str]:
    """Where the server really listens, one URL per bound socket."""
    urls = []
    for sock in sockets:
        host, port = sock.getsockname()[:2]
        urls.append(f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
    return urls


def image_sources() -> ImageSources:
    """The allowed image hosts from --image_hosts, or SystemExit."""
    try:
        return ImageSources.parse(options.image_hosts)
    except ValueError as exc:
        raise SystemExit(f"--image_hosts: {exc}") from exc


# Running

async def serve(uri: str, templates: NotifyConfig, payments_config: WeChatPayConfig | None,
                engine: EmbeddedEngine | None = None) -> None:
    """Build this role's parts once, listen, run until SIGINT/SIGTERM, then stop in order. The
    embedded engine, if any, is supervised meanwhile (started again if it dies)."""
    supervision = asyncio.create_task(engine.supervise()) if engine is not None else None
    web_role, scheduler_role = options.role in ("all", "web"), options.role in ("all", "scheduler")
    # The realtime change stream holds one pooled connection for good: room above it.
    client = client_for(uri, max_pool_size=51)
    db = client[database_name(uri)]
    await ensure_indexes(db, Retention(notifications=timedelta(days=options.keep_notifications_days),
                                       outbox=timedelta(days=options.keep_outbox_days)))
    wechat = WeChatClient(options.wechat_appid, options.wechat_secret, options.wechat_api_base)
    draw_service = Draws(db, lease=timedelta(seconds=options.draw_lease_seconds))
    wechatpay_fake = None
    if payments_config is None and options.dev:
        wechatpay_fake, payments_config = local_wechatpay(options.port, options.wechat_appid)
    payments = WeChatPayClient(payments_config) if payments_config is not None else None
    order_service = orders_for(db, payments, options.order_expire_minutes)
    claim_service = Claims(db, options.claim_days, timedelta(hours=options.claim_reminder_hours))
    health_service = Health(db)

    hub = None
    if web_role:
        hub = LiveHub(db, force_polling=options.realtime_polling, poll_interval=options.realtime_poll_seconds)
        app = make_app(db, wechat, options.admin_token, options.login_key_days, draw_service, dev=options.dev,
                       hub=hub, images=image_sources(), allowed_hosts=comma_list(options.allowed_hosts) or None,
                       realtime_options=realtime.RealtimeOptions(
                           ping_interval=options.ws_ping_interval, ping_timeout=options.ws_ping_timeout,
                           max_subscriptions=options.ws_max_subscriptions,
                           allowed_origins=comma_list(options.ws_origins)),
                       payments=payments, order_service=order_service, wechatpay_fake=wechatpay_fake,
                       claim_service=claim_service, backup_dir=options.backup_dir, health_service=health_service)
        health_service.feed = hub.feed
        if options.demo:
            await devmode.create_demo_catalogue(app.settings["catalogue"])
            demos = await devmode.create_demo_gifts(app.settings["gifts"], app.settings["accounts"])
            app.settings["demo_gifts"].extend(demos)
    else:
        app = make_health_app(health_service)

    scheduler = notifier = refunder = backlogs = None
    if scheduler_role:
        backlogs = Backlogs(db)
        scheduler = Scheduler(db, draw_service, uri, sweep_interval=options.sweep_seconds,
                              lease_seconds=options.leader_lease_seconds,
                              sweeps=[order_service.sweep, claim_service.sweep])
        health_service.scheduler = scheduler
        refunder = RefundWorker(Refunds(db, payments, lease=timedelta(seconds=options.refund_lease_seconds))) \
            if payments is not None else None
        # Its own HTTP client, sized to its concurrency (the shared one allows 10 requests).
        sender = WeChatClient(options.wechat_appid, options.wechat_secret, options.wechat_api_base,
                              http=AsyncHTTPClient(force_instance=True, max_clients=options.notify_concurrency + 2))
        notifier = NotificationWorker(db, sender, templates, Limits(
            rate=options.notify_rate, concurrency=options.notify_concurrency,
            lease=timedelta(seconds=options.notify_lease_seconds),
            max_attempts=options.notify_max_attempts, backoff_base=options.notify_backoff_seconds))

    tune_gc()
    server = http_server(app, options.http_idle_timeout, options.http_body_timeout)
    sockets = bind_sockets(options.port, options.address or None)
    server.add_sockets(sockets)
    urls = listening_urls(sockets)
    log.info("%s role listening on %s", options.role, ", ".join(urls))
    for demo in app.settings.get("demo_gifts", []):
        print(f"demo gift ({demo['label']}): {urls[0]}/gift/{demo['order_id']}", flush=True)
    if options.metrics_port:
        metrics_app().listen(options.metrics_port, address=options.metrics_address)
        log.info("metrics on http://%s:%d/metrics", options.metrics_address, options.metrics_port)
    for part in (hub, scheduler, notifier, refunder, backlogs):
        if part is not None:
            part.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    deadline = loop.time() + options.shutdown_timeout
    log.info("shutting down: no new connections; %.0f s to finish what is under way", options.shutdown_timeout)
    health_service.shutting_down = True  # /readyz says so
    stop_listening(server, sockets)  # new connections are refused: a proxy sends them elsewhere
    server.conn_params.no_keep_alive = True  # answers close their connections
    if hub is not None:
        await hub.stop()  # closes the websockets (1001): clients reconnect to another process
    await finish_requests(server, app.settings["in_flight"], deadline)
    # The work under way finishes or is handed over, each step within what is left of the
    # timeout whatever the database does (it may be the reason for the shutdown).
    def left(spare: float = 0.0) -> float:
        return max(0.1, deadline - loop.time() - spare)

    steps = [
        ("scheduler", scheduler and scheduler.stop),  # the leader lease goes to a standby now
        ("draws", lambda: draw_service.idle(timeout=min(left(2), DRAW_GRACE_SECONDS))),
        ("draw leases", draw_service.hand_over),  # what did not finish, another process resumes at once
        ("notifications", notifier and (lambda: notifier.stop(grace=left(1)))),
        ("refunds", refunder and refunder.stop),
        ("backlogs", backlogs and backlogs.stop),
        ("database client", client.close),
    ]
    for name, step in steps:
        if not step:
            continue
        try:
            await asyncio.wait_for(step(), timeout=left())
        except Exception as exc:  # a step that fails or times out must not keep the others from running
            log.warning("shutdown: %s did not finish (%s)", name, type(exc).__name__)
    if wechatpay_fake is not None:
        wechatpay_fake.stop()
    if supervision is not None:
        supervision.cancel()  # main() stops the engine itself, last, once the loop is done
    log.info("shut down")


def main() -> None:
    apply_environment(dict(os.environ))
    try:
        options.parse_command_line(command_line(sys.argv))
    except OptionError as exc:
        raise SystemExit(f"{exc} (see --help)")
    if options.role not in ROLES:
        raise SystemExit("--role must be all, web or scheduler")
    if options.log_format not in LOG_FORMATS:
        raise SystemExit("--log_format must be text or json")
    logs.configure(options.log_format)
    options.dev = options.dev or options.demo
    # A broken template, payment configuration or image host stops the start, not the first use.
    templates, payments_config = notify_config(), payment_config()
    image_sources()
    if options.dev:
        if not devmode.is_local_database(options.mongodb_uri):
            raise SystemExit("--dev/--demo refused: MONGODB_URI is not a local database")
        # Sign-in by name answers only on this machine: loopback, unless told otherwise.
        options.address = options.address or "127.0.0.1"
        if not devmode.is_loopback(options.address):
            raise SystemExit(f"--dev/--demo refused: --address {options.address} is not a loopback address "
                             "(anyone who reaches it could sign in as anyone)")
        log.warning("!!! DEVELOPMENT MODE: anyone can sign in as anyone at /api/dev/login. "
                    "Never run --dev or --demo in production. !!!")
    engine = None
    uri = options.mongodb_uri
    if not uri:
        engine = EmbeddedEngine(options.data_dir)
        try:
            uri = engine.start()  # on the main thread: the engine's guard stops it when this thread ends
        except DataDirInUse as exc:
            raise SystemExit(str(exc)) from None
    try:
        asyncio.run(serve(uri, templates, payments_config, engine))
    finally:
        if engine is not None:
            engine.stop()


if __name__ == "__main__":
    main()
