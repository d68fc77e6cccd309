"""The server's configuration: every option, once, as a field of `Config` with its default and
help. Each is set by the environment variable of its name in upper case (PORT, MONGODB_URI, ...)
or on the command line (`--port 8888` or `--port=8888`), the command line winning. Secrets are only
ever taken from there, and --help shows defaults, never values. `load()` parses and checks them
all at start, so a broken setting stops the start with a clear message, not the first use.

docs/configuration.md describes each option for operators."""
import json
import os
import sys
from dataclasses import dataclass, field, fields
from datetime import timedelta
from urllib.parse import urlsplit

from tornado.options import Error as OptionError, OptionParser

from lottery import devmode, drand
from lottery.errors import ConfigError
from lottery.images import WECHAT_IMAGE_HOSTS, ImageSources
from lottery.operators import Limits as OperatorLimits
from lottery.moderation import UNREACHABLE_CHOICES
from lottery.validate import is_loopback
from notify.templates import NotifyConfig, load_config
from wechatpay.client import WeChatPayConfig

ROLES = ("all", "web", "scheduler")
LOG_FORMATS = ("text", "json")
GROUP = "gift lottery server"
# drand's public HTTP relays of the League of Entropy (any one that answers will do: every round is
# verified against the pinned key).
DRAND_RELAYS = ("https://api.drand.sh", "https://api2.drand.sh", "https://api3.drand.sh",
                "https://drand.cloudflare.com")


def setting(default: object, help: str) -> object:
    """A field of Config that is also an option (its help shown by --help)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    # Listening
    port: int = setting(8888, "HTTP port")
    address: str = setting("", "the address to listen on; unset: every interface, or 127.0.0.1 with "
                               "--dev/--demo (loopback only)")
    allowed_hosts: str = setting("", "comma-separated host names the server answers to (Host header, any port), "
                                     "or *; unset: any, or only localhost, 127.0.0.1 and ::1 with --dev/--demo")
    http_idle_timeout: float = setting(30.0, "seconds a connection may take to send a request's headers, or sit "
                                             "idle between requests (websockets are not affected: pings watch them)")
    http_body_timeout: float = setting(60.0, "seconds a request may take to send its body")
    role: str = setting("all", "all: web and scheduler; web: HTTP only; scheduler: draws and jobs only")
    shutdown_timeout: float = setting(15.0, "seconds a SIGTERM leaves for requests in flight and work under way "
                                            "before the process exits")
    log_format: str = setting("text", "text, or json: one object per line (time, level, logger, message, "
                                      "request_id, member_id; route, status, duration_ms on access lines)")
    metrics_port: int = setting(0, "serve Prometheus /metrics on this port (0: off); never the public port")
    metrics_address: str = setting("127.0.0.1", "where /metrics listens (0.0.0.0 for a scraper on another host)")
    # The database
    mongodb_uri: str = setting("", "MongoDB URI; unset: start the embedded engine")
    data_dir: str = setting("./data", "embedded engine data folder, kept across restarts")
    backup_dir: str = setting("./backups", "where POST /api/admin/backup writes the embedded engine's archives")
    request_timeout: float = setting(2.5, "seconds all of one request's database operations may take together "
                                          "(PyMongo's client-side timeout); past it a route answers 503 "
                                          "database_unavailable, a join whose write got no answer "
                                          "join_outcome_unknown, a websocket closes with 1013")
    keep_notifications_days: float = setting(90.0, "how long a notification entry is kept once final "
                                                   "(sent, not subscribed, failed)")
    keep_outbox_days: float = setting(30.0, "how long an outbox record is kept once done")
    # WeChat
    wechat_appid: str = setting("", "mini-program appid")
    wechat_secret: str = setting("", "mini-program app secret (never printed or logged)")
    wechat_api_base: str = setting("https://api.weixin.qq.com", "WeChat API base URL")
    login_key_days: int = setting(30, "login key lifetime in days")
    image_hosts: str = setting(",".join(WECHAT_IMAGE_HOSTS), "comma-separated hosts whose https images items and "
                                                             "avatars may use (besides /static/)")
    # Content security and bot resistance (lottery/moderation.py, lottery/risk.py)
    content_review_shown: bool = setting(False, "show others a wish or nickname WeChat's content check answers "
                                                "`review` for (off: hidden, others see a neutral default)")
    content_unreachable: str = setting("accept", "when WeChat's content check cannot be reached: accept (the text "
                                                 "hidden until a re-check passes) or refuse (upstream_error)")
    risk_rank_check: bool = setting(False, "ask WeChat's user risk rank (getuserriskrank, marketing scene) before "
                                           "a member's join, cached a day")
    risk_rank_refuse_at: int = setting(3, "refuse joins by members whose risk rank (0-4) is at least this "
                                          "(with --risk_rank_check)")
    # Operations and development
    admin_token: str = setting("", "enables /api/admin/* with this bearer token (never printed)")
    console_idle_minutes: float = setting(30.0, "the operator's console: a session unused this long ends")
    console_session_hours: float = setting(12.0, "the operator's console: a session ends this long after sign-in, "
                                                 "however busy")
    console_address_header: str = setting("", "the header a proxy in front puts the client's address in "
                                              "(X-Real-IP behind the nginx of deploy/), read only to rate-limit "
                                              "console sign-ins per address; unset: the connection's address")
    media_dir: str = setting("./media", "where images uploaded in the console are kept (served at /media/)")
    dev: bool = setting(False, "development mode: browser sign-in by name, no WeChat (local database only; "
                               "never in production)")
    demo: bool = setting(False, "development mode plus one demo gift per opening method")
    # Draws and the scheduler
    draw_lease_seconds: float = setting(30.0, "how long a draw may stall before another process resumes it")
    sweep_seconds: float = setting(1.0, "how often the scheduler opens overdue gifts")
    leader_lease_seconds: float = setting(10.0, "how long a silent scheduler keeps the leadership before a "
                                                "standby takes over")
    receipt_key_file: str = setting("", "the Ed25519 private key (PEM) that signs join receipts; required with "
                                        "MONGODB_URI; unset on the embedded engine: one made in the data folder")
    # The public randomness beacon every draw mixes in (drand quicknet; docs/fairness.md)
    beacon_relays: str = setting(",".join(DRAND_RELAYS), "comma-separated drand HTTP relays, tried in turn")
    beacon_chain: str = setting("", "a JSON file of another chain's parameters (the local stand-in's), allowed "
                                    "only with loopback relays; unset: drand quicknet, pinned in the code")
    beacon_timeout: float = setting(2.0, "seconds one relay has to answer")
    beacon_wait_seconds: float = setting(10.0, "how long one draw attempt waits for its round before the sweep "
                                               "tries again")
    beacon_fallback_seconds: float = setting(0.0, "after this many seconds without a verified round since the "
                                                  "freeze, draw without the beacon (the proof says so); 0: never")
    # Realtime
    ws_origins: str = setting("", "comma-separated browser origins allowed on /ws besides this host, or *")
    ws_ping_interval: float = setting(25.0, "seconds between websocket pings")
    ws_ping_timeout: float = setting(10.0, "seconds a websocket peer has to answer a ping")
    ws_max_subscriptions: int = setting(20, "gifts one websocket connection may follow")
    realtime_polling: bool = setting(False, "follow gifts by polling instead of a change stream (automatic where "
                                            "change streams are unavailable)")
    realtime_poll_seconds: float = setting(0.5, "poll interval of the realtime polling fallback")
    # Notifications
    notify_config: str = setting("", "subscribe-message templates, a JSON file (or the JSON itself in "
                                     "NOTIFY_TEMPLATES); none: nothing is sent, see docs/notifications.md")
    notify_templates: str = setting("", "the subscribe-message templates as JSON (when --notify_config is unset)")
    notify_rate: float = setting(20.0, "subscribe messages per second, per scheduler process")
    notify_concurrency: int = setting(4, "subscribe-message requests in flight at once, per process")
    notify_lease_seconds: float = setting(60.0, "how long a notification stays claimed by a process that stopped "
                                                "answering")
    notify_page_size: int = setting(500, "an opened gift's participants queued per page; one process sends a page "
                                         "(smaller pages share a big gift among more processes)")
    notify_max_attempts: int = setting(25, "attempts before a notification is failed")
    notify_backoff_seconds: float = setting(2.0, "wait before a failed notification's second attempt; doubles "
                                                 "each time, with jitter, up to 10 min")
    # Orders, claims, refunds
    order_expire_minutes: float = setting(15.0, "how long an unpaid order holds its stock before it is closed")
    max_unpaid_orders: int = setting(3, "unpaid orders one member may hold at once (more: too_many_unpaid_orders)")
    max_unpaid_units: int = setting(50, "units one member may hold across their unpaid orders (more: "
                                        "too_many_unpaid_orders)")
    claim_days: float = setting(7.0, "how long a winner has to give an address before the item is refunded")
    claim_reminder_hours: float = setting(24.0, "how long before a claim's deadline its winner is reminded")
    refund_lease_seconds: float = setting(60.0, "how long a refund stays taken by a process that stopped "
                                                "answering before another sends it")
    reconcile_after_hour: int = setting(10, "the hour (Asia/Shanghai, 0-23) after which the previous day is "
                                            "reconciled against WeChat Pay's bill (ready after 10:00)")
    # WeChat Pay (API v3); unset WECHATPAY_MCHID: orders answer "payments are not configured",
    # except with --dev/--demo, which run against the local stand-in.
    wechatpay_mchid: str = setting("", "WeChat Pay merchant number")
    wechatpay_apiv3_key: str = setting("", "WeChat Pay APIv3 key, 32 bytes (never printed or logged)")
    wechatpay_private_key_file: str = setting("", "the merchant API private key (apiclient_key.pem)")
    wechatpay_cert_serial: str = setting("", "the merchant API certificate's serial number")
    wechatpay_public_key_file: str = setting("", "WeChat Pay public key (public-key mode, PEM)")
    wechatpay_public_key_id: str = setting("", "its id, PUB_KEY_ID_... (public-key mode)")
    wechatpay_platform_cert_files: str = setting("", "WeChat Pay platform certificates (comma-separated PEM files)")
    wechatpay_api_base: str = setting("https://api.mch.weixin.qq.com", "WeChat Pay API base URL")
    wechatpay_notify_url: str = setting("", "the public https URL of /api/payment/wechat/notify "
                                            "(http only on loopback)")
    wechatpay_refund_notify_url: str = setting("", "the public https URL of the refund notify route "
                                                   "(http only on loopback)")

    # What the settings above mean, checked once.

    @property
    def development(self) -> bool:
        """--dev or --demo."""
        return self.dev or self.demo

    @property
    def web_role(self) -> bool:
        return self.role in ("all", "web")

    @property
    def scheduler_role(self) -> bool:
        return self.role in ("all", "scheduler")

    @property
    def listen_address(self) -> str | None:
        """Where to listen: --address, or loopback in development mode, or every interface."""
        return self.address or ("127.0.0.1" if self.development else None)

    @property
    def host_names(self) -> list[str]:
        """The Host names answered: --allowed_hosts, or loopback names in development, or any."""
        names = comma_list(self.allowed_hosts)
        if not names:
            names = list(devmode.LOOPBACK_NAMES) if self.development else ["*"]
        return [name.lower().strip("[]") for name in names]

    @property
    def images(self) -> ImageSources:
        return ImageSources.parse(self.image_hosts)

    @property
    def templates(self) -> NotifyConfig:
        return load_config(self.notify_config, self.notify_templates)

    @property
    def retention(self) -> tuple[timedelta, timedelta]:
        """How long final notification entries and done outbox records are kept."""
        return timedelta(days=self.keep_notifications_days), timedelta(days=self.keep_outbox_days)

    @property
    def console_limits(self) -> OperatorLimits:
        return OperatorLimits(idle=timedelta(minutes=self.console_idle_minutes),
                              absolute=timedelta(hours=self.console_session_hours))

    def wechatpay(self) -> WeChatPayConfig | None:
        """WeChat Pay's settings (reads the key files), or None when WECHATPAY_MCHID is unset."""
        if not self.wechatpay_mchid:
            return None
        return WeChatPayConfig.load(
            mchid=self.wechatpay_mchid, appid=self.wechat_appid, apiv3_key=self.wechatpay_apiv3_key,
            private_key_file=self.wechatpay_private_key_file, cert_serial=self.wechatpay_cert_serial,
            notify_url=self.wechatpay_notify_url, public_key_file=self.wechatpay_public_key_file,
            public_key_id=self.wechatpay_public_key_id, platform_cert_files=self.wechatpay_platform_cert_files,
            api_base=self.wechatpay_api_base, refund_notify_url=self.wechatpay_refund_notify_url)

    def beacon_chain_params(self) -> drand.Chain:
        """The beacon's chain: quicknet, or (a local stand-in's) from `beacon_chain`, which only
        loopback relays may serve: production can never be pointed at another chain."""
        if not self.beacon_chain:
            return drand.QUICKNET
        relays = comma_list(self.beacon_relays)
        if not relays or not all(is_loopback(urlsplit(relay).hostname or "") for relay in relays):
            raise ValueError("another chain than drand quicknet is allowed only with loopback relays")
        with open(self.beacon_chain, encoding="utf-8") as handle:
            return drand.Chain.from_dict(json.load(handle))

    def receipt_key_path(self) -> str:
        """Where the receipt key is: the option, or (the embedded engine: one machine) one made in
        the data folder."""
        return self.receipt_key_file or os.path.join(self.data_dir, "receipt-key.pem")

    def check(self) -> None:
        """ConfigError naming the first unusable setting (never a secret's value)."""
        if self.role not in ROLES:
            raise ConfigError("--role must be all, web or scheduler")
        if not 0 <= self.reconcile_after_hour <= 23:
            raise ConfigError("--reconcile_after_hour must be an hour from 0 to 23")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError("--log_format must be text or json")
        if self.console_idle_minutes <= 0 or self.console_session_hours <= 0:
            raise ConfigError("--console_idle_minutes and --console_session_hours must be positive")
        if self.content_unreachable not in UNREACHABLE_CHOICES:
            raise ConfigError("--content_unreachable must be accept or refuse")
        if not 0 <= self.risk_rank_refuse_at <= 4:
            raise ConfigError("--risk_rank_refuse_at must be a risk rank from 0 to 4")
        if not 10 <= self.notify_page_size <= 5000:
            raise ConfigError("--notify_page_size must be from 10 to 5000")
        if self.max_unpaid_orders < 1 or self.max_unpaid_units < 1:
            raise ConfigError("--max_unpaid_orders and --max_unpaid_units must be at least 1")
        try:
            self.images
        except ValueError as exc:
            raise ConfigError(f"--image_hosts: {exc}") from exc
        try:
            self.templates
        except ConfigError as exc:
            raise ConfigError(f"notification config: {exc}") from exc
        try:
            self.wechatpay()
        except ConfigError as exc:
            raise ConfigError(f"WeChat Pay configuration: {exc}") from exc
        try:
            self.beacon_chain_params()
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"--beacon_chain: {exc}") from exc
        if self.beacon_fallback_seconds < 0 or self.beacon_wait_seconds <= 0 or self.beacon_timeout <= 0:
            raise ConfigError("--beacon_wait_seconds and --beacon_timeout must be positive, "
                              "--beacon_fallback_seconds 0 or more")
        if self.development:
            if not devmode.is_local_database(self.mongodb_uri):
                raise ConfigError("--dev/--demo refused: MONGODB_URI is not a local database")
            # Sign-in by name answers only on this machine: loopback, unless told otherwise.
            if not is_loopback(self.listen_address):
                raise ConfigError(f"--dev/--demo refused: --address {self.address} is not a loopback address "
                                  "(anyone who reaches it could sign in as anyone)")
        if not self.receipt_key_file and self.mongodb_uri:
            raise ConfigError("--receipt_key_file is required with MONGODB_URI: the Ed25519 key that signs join "
                              "receipts, one file for every process (README: operating)")


def comma_list(text: str) -> list[str]:
    """`a, b,,c` -> ["a", "b", "c"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def option_parser() -> OptionParser:
    """Tornado's parser with one option per Config field (its own, not Tornado's global one)."""
    parser = OptionParser()
    for spec in fields(Config):
        parser.define(spec.name, default=spec.default, type=type(spec.default),
                      help=f"{spec.metadata['help']} (env {spec.name.upper()})", group=GROUP)
    return parser


def from_environment(parser: OptionParser, environ: dict[str, str]) -> None:
    """Set each option from its environment variable (`--notify_rate` from NOTIFY_RATE)."""
    for name, value in parser.group_dict(GROUP).items():
        raw = environ.get(name.upper())
        if raw is None:
            continue
        try:
            if isinstance(value, bool):
                if raw.strip().lower() not in TRUE + FALSE:
                    raise ValueError("expected 1/0, true/false, yes/no or on/off")
                parser[name] = raw.strip().lower() in TRUE
            else:
                parser[name] = type(value)(raw)
        except ValueError as exc:
            raise ConfigError(f"environment variable {name.upper()}: not a valid {type(value).__name__} ({exc})")


def command_line(parser: OptionParser, argv: list[str]) -> list[str]:
    """The arguments as Tornado reads them: `--port 8888` joined into `--port=8888` (flags stay
    flags), and each value checked against its option's type, for a clear message."""
    ours = parser.group_dict(GROUP)
    joined: list[str] = []
    for arg in argv:
        previous = joined[-1] if joined else ""
        name = previous[2:].replace("-", "_")
        if (previous.startswith("--") and "=" not in previous and name in ours
                and not isinstance(ours[name], bool) and not arg.startswith("--")):
            joined[-1] = f"{previous}={arg}"
        else:
            joined.append(arg)
    for position, arg in enumerate(joined[1:], start=1):
        name, equals, value = arg[2:].partition("=")
        kind = type(ours.get(name.replace("-", "_"), ""))
        if kind is bool and equals:
            # Tornado reads any value but false/0/f as on (`--dev=no` would be on): ours say.
            if value.strip().lower() not in TRUE + FALSE:
                raise ConfigError(f"--{name}: {value!r} is not 1/0, true/false, yes/no or on/off")
            joined[position] = f"--{name}={'true' if value.strip().lower() in TRUE else 'false'}"
        if value and kind in (int, float):
            try:
                kind(value)
            except ValueError:
                raise ConfigError(f"--{name}: {value!r} is not a valid {kind.__name__} (see --help)") from None
    return joined


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Config:
    """The configuration from the environment and the command line, checked; SystemExit with a
    clear message when a setting is unusable."""
    argv = sys.argv if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    parser = option_parser()
    try:
        from_environment(parser, environ)
        parser.parse_command_line(command_line(parser, argv))
        config = Config(**parser.group_dict(GROUP))
        config.check()
    except OptionError as exc:
        raise SystemExit(f"{exc} (see --help)") from None
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    return config
