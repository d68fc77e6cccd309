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
from tornado.options import Error as OptionError, define, options

from handlers import admin, claims, draws, gifts, health, legacy, orders, pages, payment, profile, realtime, shop
from handlers.base import NotFoundHandler, log_request
from handlers.metrics import metrics_app
from lottery import devmode
from lottery.accounts import Accounts
from lottery.backlogs import Backlogs
from lottery.catalogue import Catalogue
from lottery.claims import Claims
from lottery.draw import Draws
from lottery.gifts import Gifts
from lottery.health import Health
from lottery.live.hub import LiveHub
from lottery.notifications import Notifications
from lottery.orders import Orders
from lottery.refunds import Refunds
from lottery.profiles import Profiles
from lottery.roster import Roster
from lottery.scheduler import Scheduler
from lottery.storage.backup import Backups
from lottery.storage.connection import Retention, client_for, database_name, ensure_indexes
from lottery.storage.engine import EmbeddedEngine
from notify.templates import ConfigError, NotifyConfig, load_config
from notify.wechat import WeChatClient
from notify.wechatpay import ConfigError as PaymentConfigError, WeChatPayClient, WeChatPayConfig
from notify.wechatpay_fake import FakeWeChatPay
from notify.refund_worker import RefundWorker
from notify.worker import Limits, NotificationWorker

log = logging.getLogger("gift_lottery")

ROLES = ("all", "web", "scheduler")

# Every option also reads the environment variable of its name in upper case (PORT, MONGODB_URI,
# ...); the command line wins. Secrets are only ever taken from there or the command line, and
# --help shows defaults, never values.
GROUP = "gift lottery server"


def option(name: str, default: object, help: str) -> None:
    """define() in this server's group, naming the environment variable in its help."""
    define(name, default=default, help=f"{help} (env {name.upper()})", group=GROUP)


option("port", default=8888, help="HTTP port")
option("mongodb_uri", default="", help="MongoDB URI; unset: start the embedded engine")
option("data_dir", default="./data", help="embedded engine data folder, kept across restarts")
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


def http_server(app: web.Application) -> HTTPServer:
    """The HTTP server as production runs it; the tests serve their apps with this too."""
    return HTTPServer(app, max_body_size=MAX_BODY_BYTES)


def make_app(db: AsyncDatabase, wechat: WeChatClient, admin_token: str = "", login_key_days: int = 30,
             draw_service: Draws | None = None, dev: bool = False, hub: LiveHub | None = None,
             realtime_options: realtime.RealtimeOptions | None = None, payments: WeChatPayClient | None = None,
             order_service: Orders | None = None, wechatpay_fake: FakeWeChatPay | None = None,
             claim_service: Claims | None = None, backup_dir: str = "./backups") -> web.Application:
    """The web application: every service built once here (or, shared with a scheduler, given)
    and reached by the handlers as properties (handlers/base.py). No globals, so tests build as
    many as they like. `payments` None: orders answer "payments are not configured"."""
    accounts = Accounts(db, wechat.code2session, timedelta(days=login_key_days))
    draw_service = draw_service or Draws(db)
    gift_service = Gifts(db, accounts, on_ready=draw_service.open_soon)
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
        (r".*", NotFoundHandler),
    ]
    return web.Application(
        routes, log_function=log_request, admin_token=admin_token, dev=dev, demo_gifts=[],
        accounts=accounts, gifts=gift_service, draws=draw_service, profiles=Profiles(db, wechat.appid),
        roster=Roster(db, gift_service), notifications=Notifications(db), health=Health(db),
        catalogue=Catalogue(db), orders=order_service or orders_for(db, payments), payments=payments,
        claims=claim_service or Claims(db), refunds=Refunds(db, payments),
        wechatpay_fake=wechatpay_fake, backups=Backups(db.client, backup_dir), hub=hub or LiveHub(db), realtime=realtime_options or realtime.RealtimeOptions())


def orders_for(db: AsyncDatabase, payments: WeChatPayClient | None, expire_minutes: float = 15) -> Orders:
    """The order service over WeChat Pay (or none)."""
    config = payments.config if payments is not None else None
    return Orders(db, payments, mchid=config.mchid if config else "", appid=config.appid if config else "",
                  expire_after=timedelta(minutes=expire_minutes))


def make_health_app(db: AsyncDatabase) -> web.Application:
    """What a scheduler-role process serves: its health, nothing else."""
    return web.Application([*health.default_handlers, (r".*", NotFoundHandler)],
                           log_function=log_request, health=Health(db))


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


# Running

async def serve(uri: str, templates: NotifyConfig, payments_config: WeChatPayConfig | None) -> None:
    """Build this role's parts once, listen, run until SIGINT/SIGTERM, then stop in order."""
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

    hub = None
    if web_role:
        hub = LiveHub(db, force_polling=options.realtime_polling, poll_interval=options.realtime_poll_seconds)
        app = make_app(db, wechat, options.admin_token, options.login_key_days, draw_service, dev=options.dev,
                       hub=hub, realtime_options=realtime.RealtimeOptions(
                           ping_interval=options.ws_ping_interval, ping_timeout=options.ws_ping_timeout,
                           max_subscriptions=options.ws_max_subscriptions,
                           allowed_origins=[o.strip() for o in options.ws_origins.split(",") if o.strip()]),
                       payments=payments, order_service=order_service, wechatpay_fake=wechatpay_fake,
                       claim_service=claim_service, backup_dir=options.backup_dir)
        if options.demo:
            await devmode.create_demo_catalogue(app.settings["catalogue"])
            demos = await devmode.create_demo_gifts(app.settings["gifts"], app.settings["accounts"])
            app.settings["demo_gifts"].extend(demos)
            for demo in demos:
                print(f"demo gift ({demo['label']}): http://127.0.0.1:{options.port}/gift/{demo['order_id']}",
                      flush=True)
    else:
        app = make_health_app(db)

    scheduler = notifier = refunder = backlogs = None
    if scheduler_role:
        backlogs = Backlogs(db)
        scheduler = Scheduler(db, draw_service, uri, sweep_interval=options.sweep_seconds,
                              lease_seconds=options.leader_lease_seconds,
                              sweeps=[order_service.sweep, claim_service.sweep])
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
    server = http_server(app)
    server.listen(options.port)
    log.info("%s role listening on http://127.0.0.1:%d", options.role, options.port)
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

    log.info("shutting down")
    server.stop()
    if hub is not None:
        await hub.stop()  # closes the websockets (1001): clients reconnect to another process
    if scheduler is not None:
        await scheduler.stop()
    # Draws under way finish (outcome copies start now); what outlasts this, the sweep finishes.
    await draw_service.idle(timeout=10)
    if notifier is not None:
        await notifier.stop()
    if refunder is not None:
        await refunder.stop()
    if backlogs is not None:
        await backlogs.stop()
    if wechatpay_fake is not None:
        wechatpay_fake.stop()
    await client.close()


def main() -> None:
    apply_environment(dict(os.environ))
    try:
        options.parse_command_line(command_line(sys.argv))
    except OptionError as exc:
        raise SystemExit(f"{exc} (see --help)")
    if options.role not in ROLES:
        raise SystemExit("--role must be all, web or scheduler")
    options.dev = options.dev or options.demo
    # A broken template or payment configuration stops the start, not the first send.
    templates, payments_config = notify_config(), payment_config()
    if options.dev:
        if not devmode.is_local_database(options.mongodb_uri):
            raise SystemExit("--dev/--demo refused: MONGODB_URI is not a local database")
        log.warning("!!! DEVELOPMENT MODE: anyone can sign in as anyone at /api/dev/login. "
                    "Never run --dev or --demo in production. !!!")
    engine = None
    uri = options.mongodb_uri
    if not uri:
        engine = EmbeddedEngine(options.data_dir)
        uri = engine.start()
    try:
        asyncio.run(serve(uri, templates, payments_config))
    finally:
        if engine is not None:
            engine.stop()


if __name__ == "__main__":
    main()
