"""Every service of a process, built once, in one place, from the configuration: the domain's
services over the database, the outside parties' clients, and (in a scheduler-role process) the
background loops. `make_app` (server.py) takes them ready; handlers reach them as properties
(handlers/services.py); nothing is patched in afterwards."""
from dataclasses import dataclass, fields
from datetime import timedelta
from functools import partial

from pymongo.asynchronous.database import AsyncDatabase
from tornado.httpclient import AsyncHTTPClient

from config import Config, comma_list
from lottery.accounts import Accounts
from lottery.admin_actions import AdminActions
from lottery.audit import AuditLog
from lottery.background import Loop
from lottery.beacon import Beacon
from lottery.backlogs import Backlogs
from lottery.catalogue import Catalogue
from lottery.claims import Claims
from lottery.dashboard import Dashboard
from lottery.draw import Draws
from lottery.gifts import Gifts
from lottery.health import Health
from lottery.live.hub import LiveHub
from lottery.media import MediaFolder
from lottery.moderation import Moderation, Settle, recheck_worker, settle_wish
from lottery.notifications import Notifications
from lottery.operators import Operators
from lottery.orders import Orders
from lottery.profiles import Profiles
from lottery.receipts import ReceiptKey
from lottery.reconciliation import Reconciliation
from lottery.refunds import Refunds, refund_worker
from lottery.risk import RiskGate
from lottery.roster import Roster
from lottery.scheduler import Scheduler
from lottery.storage.backup import Backups
from notify.security import WeChatSecurity
from notify.tokens import AccessTokens
from notify.worker import Limits, NotificationWorker
from relays.drand import relay_fetcher
from wechat.client import WeChatClient
from wechat.userdata import decrypt_user_data
from wechatpay.client import WeChatPayClient


@dataclass
class Services:
    db: AsyncDatabase
    wechat: WeChatClient
    payments: WeChatPayClient | None  # None: orders answer "payments are not configured"
    accounts: Accounts
    draws: Draws
    gifts: Gifts
    profiles: Profiles
    moderation: Moderation
    roster: Roster
    notifications: Notifications
    catalogue: Catalogue
    orders: Orders
    claims: Claims
    refunds: Refunds
    reconciliation: Reconciliation
    backups: Backups
    operators: Operators
    audit: AuditLog
    admin_actions: AdminActions
    dashboard: Dashboard
    health: Health
    hub: LiveHub | None  # web role
    # Scheduler role: the background loops.
    scheduler: Scheduler | None = None
    notifier: NotificationWorker | None = None
    refunder: Loop | None = None
    backlogs: Backlogs | None = None
    rechecker: Loop | None = None  # re-checks text accepted while WeChat's content check was away
    # --dev/--demo without WeChat Pay settings: the local stand-in (fakes/wechatpay.py).
    wechatpay_fake: object | None = None

    def by_name(self) -> dict[str, object]:
        """name -> service, as the app's settings carry them."""
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}

    def background(self) -> list:
        """What start() starts and shutdown stops, in order."""
        return [part for part in (self.hub, self.scheduler, self.notifier, self.refunder, self.backlogs,
                                  self.rechecker) if part is not None]


def text_settlers(db: AsyncDatabase, moderation: Moderation, profiles: Profiles) -> dict[str, Settle]:
    """What a content re-check's verdict does, by kind of text (lottery/moderation.py)."""
    return {"wish": partial(settle_wish, db, moderation), "nickname": profiles.settle_nickname}


def beacon_of(config: Config) -> Beacon:
    """The randomness beacon the draws mix in: the configured chain through its relays."""
    return Beacon(config.beacon_chain_params(), comma_list(config.beacon_relays), relay_fetcher(config.beacon_timeout),
                  fallback_after=config.beacon_fallback_seconds)


def build_services(config: Config, db: AsyncDatabase, wechat: WeChatClient | None = None,
                   payments: WeChatPayClient | None = None, hub: LiveHub | None = None,
                   wechatpay_fake: object | None = None, beacon: Beacon | None = None) -> Services:
    """This process's services for its role. `wechat`, `payments` and `hub` may be given (tests
    point them at the local stand-ins); otherwise they are made from `config`."""
    wechat = wechat or WeChatClient(config.wechat_appid, config.wechat_secret, config.wechat_api_base)
    if payments is None and (payment_config := config.wechatpay()) is not None:
        payments = WeChatPayClient(payment_config)
    images = config.images
    templates = config.templates
    accounts = Accounts(db, wechat.code2session, timedelta(days=config.login_key_days))
    receipt_key = ReceiptKey.load(config.receipt_key_path(), create=not config.receipt_key_file)
    draws = Draws(db, beacon or beacon_of(config), receipt_key, lease=timedelta(seconds=config.draw_lease_seconds),
                  beacon_wait=config.beacon_wait_seconds)
    decrypt = partial(decrypt_user_data, appid=wechat.appid)  # WeChat's encrypted user and group data
    # Without a mini-program, or in development (members signed in by name have no WeChat
    # openid), there is nothing to check text or risk against.
    security = WeChatSecurity(wechat, AccessTokens(db, wechat)) if wechat.appid and not config.development else None
    moderation = Moderation(db, security, review_shown=config.content_review_shown,
                            unreachable=config.content_unreachable)
    risk = RiskGate(db, security, config.risk_rank_refuse_at) if config.risk_rank_check and security else None
    gifts = Gifts(db, accounts, receipt_key, on_ready=draws.open_soon, images=images, decrypt=decrypt, risk=risk)
    profiles = Profiles(db, decrypt, images, moderation)
    payment_settings = payments.config if payments is not None else None
    orders = Orders(db, payments, mchid=payment_settings.mchid if payment_settings else "",
                    appid=payment_settings.appid if payment_settings else "",
                    expire_after=timedelta(minutes=config.order_expire_minutes),
                    max_unpaid_orders=config.max_unpaid_orders, max_unpaid_units=config.max_unpaid_units,
                    moderation=moderation)
    claims = Claims(db, config.claim_days, timedelta(hours=config.claim_reminder_hours))
    refunds = Refunds(db, payments, lease=timedelta(seconds=config.refund_lease_seconds))
    reconciliation = Reconciliation(db, payments, orders, after_hour=config.reconcile_after_hour)
    limits = Limits(rate=config.notify_rate, concurrency=config.notify_concurrency,
                    lease=timedelta(seconds=config.notify_lease_seconds),
                    max_attempts=config.notify_max_attempts, backoff_base=config.notify_backoff_seconds)
    notifications = Notifications(db, templates.template_ids(), lease=limits.lease, page_size=config.notify_page_size)
    if hub is None and config.web_role:
        hub = LiveHub(db, force_polling=config.realtime_polling, poll_interval=config.realtime_poll_seconds,
                      read_timeout=config.request_timeout)
    scheduler = notifier = refunder = backlogs = rechecker = None
    if config.scheduler_role:
        scheduler = Scheduler(db, draws, sweep_interval=config.sweep_seconds,
                              lease_seconds=config.leader_lease_seconds,
                              sweeps=[orders.sweep, claims.sweep, reconciliation.run_due])
        # Its own HTTP client, sized to its concurrency (the shared one allows 10 requests).
        sender = WeChatClient(config.wechat_appid, config.wechat_secret, config.wechat_api_base,
                              http=AsyncHTTPClient(force_instance=True, max_clients=config.notify_concurrency + 2))
        notifier = NotificationWorker(db, sender, templates, limits, records=notifications)
        refunder = refund_worker(refunds) if payments is not None else None
        backlogs = Backlogs(db)
        rechecker = recheck_worker(moderation, text_settlers(db, moderation, profiles))
    catalogue = Catalogue(db, images)
    backups = Backups(db.client, config.backup_dir)
    operators = Operators(db, config.console_limits)
    audit = AuditLog(db)
    admin_actions = AdminActions(audit, catalogue, gifts, draws, orders, claims, refunds, reconciliation, backups,
                                 operators, MediaFolder(config.media_dir))
    return Services(
        db=db, wechat=wechat, payments=payments, accounts=accounts, draws=draws, gifts=gifts,
        profiles=profiles, moderation=moderation,
        roster=Roster(db, gifts), notifications=notifications, catalogue=catalogue, orders=orders,
        claims=claims, refunds=refunds, reconciliation=reconciliation, backups=backups,
        operators=operators, audit=audit, admin_actions=admin_actions, dashboard=Dashboard(db, audit),
        health=Health(db, feed=hub.feed if hub is not None else None, scheduler=scheduler), hub=hub,
        scheduler=scheduler, notifier=notifier, refunder=refunder, backlogs=backlogs, rechecker=rechecker,
        wechatpay_fake=wechatpay_fake)
