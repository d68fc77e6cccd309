"""The notification worker: expands durable records into outbox entries and delivers them.

Runs in the scheduler role (any number of processes may run it). Each entry is claimed just
before its request, by one conditional update with a lease, so two processes never send the same
entry, and an entry held by a process that died is taken over once its lease lapses. A drawn
gift's participants are sent a page at a time when nothing else is due: the page's entries are
inserted already claimed for this process (an id is inserted once, so whoever inserted it holds
it; lottery/notifications.py), then sent like any claimed slice. Requests
go out through Tornado's AsyncHTTPClient on the event loop (no threads), paced by a per-process
rate limit and at most `concurrency` at a time.

What an answer means (`errcode`):
- 0: `sent`. 43101 (not subscribed, or its one-time subscription used up): `not_subscribed`.
- 40001/42001: the token is replaced (once, however many requests saw it) and the send retried
  at once.
- -1, 45009/45011 and other rate limits, HTTP 5xx, timeouts and network errors (and errcodes
  not listed here): retried with exponential backoff and equal jitter until `max_attempts`, then
  `failed`.
- 40003/40037/47003/41030/47001/40036 (refusals of the message itself): `failed` at once, logged
  with the field WeChat named.

A request whose answer never came (a timeout, or the process died with it in flight) is tried
again; WeChat has no idempotency key, so if it had in fact delivered, the one-time subscription
is used up and the repeat answers 43101 instead of reaching the member twice."""
import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from lottery import clock, logs, metrics
from lottery.background import Loop
from lottery.backoff import database_away
from lottery.notifications import Notifications
from lottery.storage import leases
from lottery.storage import notifications as store
from notify.templates import NotifyConfig
from notify.tokens import AccessTokens
from wechat.client import WeChatClient, WeChatError

log = logging.getLogger(__name__)

TOKEN_REJECTED = (40001, 42001)
NOT_SUBSCRIBED = 43101
# The message itself is wrong: sending it again cannot help.
FINAL_ERRORS = {40003: "invalid openid", 40037: "invalid template_id", 47003: "invalid data",
                41030: "invalid page", 47001: "invalid body", 40036: "invalid template size"}
RATE_LIMITED = (-1, 45009, 45011)


def errcode_class(exc: WeChatError) -> str:
    """A bounded label for a failed send (the metrics'): which kind of trouble it was."""
    if exc.errcode == NOT_SUBSCRIBED:
        return "not_subscribed"
    if exc.errcode in TOKEN_REJECTED:
        return "token"
    if exc.errcode in FINAL_ERRORS:
        return "message_refused"
    if exc.errcode in RATE_LIMITED:
        return "busy"
    if exc.errcode is not None:
        return "other_errcode"
    if exc.http_status:
        return "http_error"
    return "network"


@dataclass
class Limits:
    """How fast and how hard the worker pushes, and how it backs off."""

    rate: float = 20.0  # messages per second, this process
    concurrency: int = 4
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 25
    backoff_base: float = 2.0  # seconds before the second attempt
    backoff_cap: float = 600.0
    poll_interval: float = 0.5
    # Entries read per round: the due-entry query costs the embedded engine as much for 200 as
    # for 1,000 (it is bound by how many are pending), so a round reads many...
    batch: int = 1000
    # ...and claims no new slice after this long, so entries left by a stopped process are
    # looked for again soon (1,000 at the default 20/s would make a round of 50 s).
    round_seconds: float = 5.0


@dataclass
class Stats:
    sent: int = 0
    not_subscribed: int = 0
    failed: int = 0
    retried: int = 0
    token_replacements: int = 0
    by_error: dict = field(default_factory=dict)


class RateLimiter:
    """Paces calls evenly at `rate` per second (shared by this process's senders)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class NotificationWorker:
    """start() in the scheduler role; stop() lets requests in flight finish (briefly)."""

    def __init__(self, db: AsyncDatabase, wechat: WeChatClient, config: NotifyConfig,
                 limits: Limits | None = None, tokens: AccessTokens | None = None,
                 records: Notifications | None = None) -> None:
        self.db = db
        self.wechat = wechat
        self.config = config
        self.limits = limits or Limits()
        self.tokens = tokens or AccessTokens(db, wechat)
        self.records = records or Notifications(db, config.template_ids(), lease=self.limits.lease)
        self.owner = leases.owner_id()
        self.stats = Stats()
        self._limiter = RateLimiter(self.limits.rate)
        interval = self.limits.poll_interval
        self.expansion = Loop("notification expansion", self.expand_once, interval)
        self.delivery = Loop("notification delivery", self.deliver_once, interval)

    def start(self) -> None:
        """Begin expanding and delivering in the background on the running loop."""
        self.expansion.start()
        self.delivery.start()
        log.info("notification worker started: %.1f msg/s, concurrency %d, templates: %s",
                 self.limits.rate, self.limits.concurrency, ", ".join(sorted(self.config.templates)) or "none")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking work; requests in flight get up to `grace` seconds to finish (the
        delivery round checks `stopping` between entries), then they are cancelled."""
        await asyncio.gather(self.expansion.stop(grace), self.delivery.stop(grace))

    # Expansion

    async def expand_once(self) -> bool:
        """One round of expansion; True if there was anything to expand. (A drawn gift's
        participant pages are the delivery's: it makes their entries as it sends them.)"""
        direct = await self.records.expand_direct_joins()
        opened = await self.records.expand_opened_gifts()
        messages = await self.records.expand_messages()
        return bool(direct or opened or messages)

    # Delivery

    async def deliver_once(self) -> int:
        """Fetch due and lapsed entries and attempt each (claimed first); returns how many were
        looked at. Due entries are claimed a slice at a time by one update (`store.claim_due`),
        sent, and their answers recorded by one write; an entry whose holder stopped is taken
        over one at a time, with the version it was seen at."""
        now = clock.utcnow()
        lapsed = await store.lapsed(self.db, now, self.limits.batch)
        due = await store.due(self.db, now, self.limits.batch)
        taken = [entry for entry in [await self._take_over(e, now) for e in lapsed] if entry]
        if taken:
            await self._attempt_all(taken)
        # Oldest first. Processes reading the same head collide on a slice at the cost of one
        # update that takes nothing; the loser goes on to the next slice.
        round_ends = asyncio.get_running_loop().time() + self.limits.round_seconds
        for start in range(0, len(due), store.CLAIM_SLICE):
            if self.delivery.stopping or asyncio.get_running_loop().time() > round_ends:
                break
            now = clock.utcnow()
            claimed = await store.claim_due(self.db, due[start:start + store.CLAIM_SLICE],
                                            self.owner, now, now + self.limits.lease)
            await self._attempt_all(claimed)
        paged = await self._deliver_pages(round_ends) if len(due) < self.limits.batch else 0
        return len(lapsed) + len(due) + paged

    async def _deliver_pages(self, round_ends: float) -> int:
        """With nothing else due: drawn gifts' participants, a page at a time, their entries made
        already claimed for this process and sent a slice at a time. Their lease covers the
        page's wait behind the rate limit. Returns how many entries were made."""
        made = 0
        loop = asyncio.get_running_loop()
        while not self.delivery.stopping and loop.time() <= round_ends:
            slack = 1.5 * self.records.page_size / self.limits.rate if self.limits.rate > 0 else 0.0
            until = clock.utcnow() + self.limits.lease + timedelta(seconds=slack)
            entries = await self.records.expand_pages(room=1, claim_for=(self.owner, until))
            if not entries:
                break
            made += len(entries)
            claimed = [entry for entry in entries if entry["status"] == "sending"]
            for start in range(0, len(claimed), store.CLAIM_SLICE):
                await self._attempt_all(claimed[start:start + store.CLAIM_SLICE])
        return made

    async def _take_over(self, entry: dict, now: datetime) -> dict | None:
        """The lapsed entry, claimed as this process's attempt; None if another got it first."""
        if not await store.claim(self.db, entry, self.owner, now, now + self.limits.lease):
            return None
        log.warning("notification %s: taken over from a stopped process (lease lapsed)", entry["_id"])
        return {**entry, "status": "sending", "attempts": (entry.get("attempts") or 0) + 1}

    async def _attempt_all(self, claimed: list[dict]) -> None:
        """Send these claimed entries, `concurrency` at a time and paced by the rate limit, then
        record their answers in one write. Entries not sent because the worker is stopping go
        back to `pending` at once instead of waiting out their lease."""
        if not claimed:
            return
        queue: asyncio.Queue = asyncio.Queue()
        for entry in claimed:
            queue.put_nowait(entry)
        answers: dict[str, dict] = {}
        try:
            await asyncio.gather(*(self._sender(queue, answers)
                                   for _ in range(min(self.limits.concurrency, len(claimed)))))
        finally:
            unsent = [e["_id"] for e in claimed if e["_id"] not in answers]
            recorded = await store.record_many(self.db, self.owner, answers)
            if recorded < len(answers):
                log.warning("%d of %d notification answers not recorded: their leases were lost",
                            len(answers) - recorded, len(answers))
            if unsent and self.delivery.stopping:
                await store.release(self.db, unsent, self.owner, clock.utcnow())

    async def _sender(self, queue: asyncio.Queue, answers: dict[str, dict]) -> None:
        while not self.delivery.stopping and not queue.empty():
            entry = queue.get_nowait()
            await self._limiter.wait()
            try:
                with logs.bound(entry.get("request_id"), entry.get("member_id")):
                    answers[entry["_id"]] = await self._attempt(entry)
            except PyMongoError as exc:
                if database_away(exc):
                    raise  # the round ends; the loop backs off (the lease lapses, it is retried)
                log.exception("notification %s: database error; its lease will lapse and it is retried",
                              entry["_id"])

    async def _attempt(self, entry: dict) -> dict:
        """Send one claimed entry; the fields that record its answer."""
        attempts = entry["attempts"]  # this attempt included
        try:
            fields = await self._deliver(entry, attempts)
        except Exception as exc:  # a bug must not leave the entry held: retry it later
            if database_away(exc):
                raise  # the round ends and backs off; the lease lapses and the entry is retried
            log.exception("notification %s: unexpected error", entry["_id"])
            fields = self._retry_or_fail(attempts, f"internal error: {type(exc).__name__}")
            fields["error_class"] = "internal"
        status = fields["status"]
        metrics.NOTIFICATIONS.labels("retry" if status == "pending" else status, fields.pop("error_class")).inc()
        if status == "pending":
            self.stats.retried += 1
        else:
            setattr(self.stats, status, getattr(self.stats, status) + 1)
        now = clock.utcnow()
        fields.update(updated_at=now, last_attempt_by=self.owner)
        if status in store.FINAL:
            fields["final_at"] = now  # retention counts from here (a TTL index)
        return fields

    async def _deliver(self, entry: dict, attempts: int) -> dict:
        """Send one entry; returns the fields that record the answer, and `error_class` (the
        metrics' label, not stored)."""
        template = self.config.templates.get(entry["kind"])
        if template is None:
            return {**self._final("not_subscribed", f"no template configured for {entry['kind']}"),
                    "error_class": "no_template"}
        if template.template_id != entry["template_id"]:
            return {**self._final("failed", "the template of this kind changed after the entry was created"),
                    "error_class": "template_changed"}
        _, page, data = self.config.render(entry["kind"], entry.get("values") or {})
        message = {"touser": entry["touser"], "template_id": template.template_id, "page": page,
                   "data": data, "miniprogram_state": self.config.miniprogram_state,
                   "lang": self.config.lang}
        try:
            token = await self.tokens.get()
            try:
                answer = await self.wechat.send_subscribe(token, message)
            except WeChatError as exc:
                if exc.errcode not in TOKEN_REJECTED:
                    raise
                self.stats.token_replacements += 1
                token = await self.tokens.replace(token)
                answer = await self.wechat.send_subscribe(token, message)
        except WeChatError as exc:
            return {**self._classify(entry, exc, attempts), "error_class": errcode_class(exc)}
        return {"status": "sent", "sent_at": clock.utcnow(), "msgid": answer.get("msgid"),
                "last_error": None, "error_class": "ok"}

    def _classify(self, entry: dict, exc: WeChatError, attempts: int) -> dict:
        key = str(exc.errcode if exc.errcode is not None else exc.http_status or "network")
        self.stats.by_error[key] = self.stats.by_error.get(key, 0) + 1
        if exc.errcode == NOT_SUBSCRIBED:
            return self._final("not_subscribed", f"43101: {exc.errmsg}")
        if exc.errcode in FINAL_ERRORS:
            # errmsg names the offending field, e.g. "argument invalid! data.thing1.value invalid".
            log.warning("notification %s (%s) refused by WeChat: errcode %s: %s",
                        entry["_id"], entry["kind"], exc.errcode, exc.errmsg)
            return self._final("failed", f"{exc.errcode}: {exc.errmsg}")
        # Busy, rate-limited, token trouble, 5xx, no answer, or an errcode we do not know:
        # try again later (bounded by max_attempts).
        return self._retry_or_fail(attempts, str(exc))

    def _retry_or_fail(self, attempts: int, error: str) -> dict:
        if attempts >= self.limits.max_attempts:
            log.warning("notification gave up after %d attempts: %s", attempts, error)
            return self._final("failed", f"gave up after {attempts} attempts: {error}")
        return {"status": "pending", "last_error": error,
                "next_attempt_at": clock.utcnow() + timedelta(seconds=self.backoff(attempts))}

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt: exponential, capped, with equal jitter (half the
        ceiling plus a random part up to the other half: never sooner than half, and entries
        that failed together during an outage do not all come back in the same instant)."""
        ceiling = min(self.limits.backoff_cap, self.limits.backoff_base * 2 ** (attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    @staticmethod
    def _final(status: str, error: str | None) -> dict:
        return {"status": status, "last_error": error}
