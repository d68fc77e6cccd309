"""Content security: user text that others will see (a gift's wish, a nickname) and pass phrases
go through WeChat's text check (`msg_sec_check` version 2) before anyone else can see them.

- `risky`: refused with a clear message (ContentRisky), nothing stored.
- `review`: accepted; shown to others only if `--content_review_shown` (default: hidden).
- WeChat unreachable (or refusing the call): `--content_unreachable=accept` (default) accepts the
  text hidden and queues it (`text_checks`) for the re-check worker, which shows it once it passes;
  `refuse` answers upstream_error instead.

Hidden text is kept aside (`wish_pending`, `nickname_pending`) and others see a neutral default
(DEFAULT_WISH, 微信用户) in its place; its author sees what they wrote."""
import logging
from datetime import timedelta
from typing import Awaitable, Callable, Protocol

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.background import Loop
from lottery.errors import ContentRisky, UpstreamError, UpstreamFailure
from lottery.storage import gifts, leases, text_checks

log = logging.getLogger(__name__)

# msg_sec_check's scenes: 1 profile (资料), 2 comment (评论), 3 forum (论坛), 4 social log (社交日志).
SCENES = {"nickname": 1, "wish": 2, "pass_phrase": 2}
UNREACHABLE_CHOICES = ("accept", "refuse")
PENDING = "pending"  # accepted while WeChat was away: hidden until a re-check passes
RECHECK_LEASE = timedelta(seconds=60)
RECHECK_BACKOFF_CAP = timedelta(minutes=30)
MAX_RECHECKS = 50  # then it stays hidden for good (the operator's)

# (ref, text, verdict) -> None: what a re-check's verdict does to the text's owner.
Settle = Callable[[str, str, str], Awaitable[None]]


class TextChecker(Protocol):
    async def check_text(self, openid: str, scene: int, text: str) -> str: ...


class Moderation:
    """Screening user text, and re-checking what was accepted while WeChat was away."""

    def __init__(self, db: AsyncDatabase, checker: TextChecker | None, review_shown: bool = False,
                 unreachable: str = "accept") -> None:
        if unreachable not in UNREACHABLE_CHOICES:
            raise ValueError("unreachable must be accept or refuse")
        self.db = db
        self.checker = checker  # None: nothing to check against (no WeChat), every text passes
        self.review_shown = review_shown
        self.unreachable = unreachable
        self.owner = leases.owner_id()

    def shown(self, verdict: str) -> bool:
        """Whether text with this verdict is shown to others."""
        return verdict == "pass" or (verdict == "review" and self.review_shown)

    async def screen(self, kind: str, openid: str, text: str) -> str:
        """pass, review or pending (WeChat away, accepted hidden); ContentRisky for risky text,
        UpstreamError when WeChat is away and the choice is to refuse."""
        if self.checker is None or not text:
            return "pass"
        try:
            verdict = await self.checker.check_text(openid, SCENES[kind], text)
        except UpstreamFailure as exc:
            metrics.CONTENT_CHECKS.labels(kind, "unreachable").inc()
            log.warning("content check of a %s unavailable (%s); %s", kind, exc, self.unreachable)
            if self.unreachable == "refuse":
                raise UpstreamError() from exc
            return PENDING
        metrics.CONTENT_CHECKS.labels(kind, verdict).inc()
        if verdict == "risky":
            log.warning("a %s was refused by the content check", kind)  # never the text itself
            raise ContentRisky()
        return verdict

    async def hold(self, kind: str, ref: str, openid: str, text: str, verdict: str) -> None:
        """After storing text with this verdict: one accepted while WeChat was away waits for
        its re-check."""
        if verdict == PENDING:
            await text_checks.put(self.db, kind, ref, openid, text, clock.utcnow())

    async def recheck(self, settle: dict[str, Settle], limit: int = 20) -> int:
        """One round of the re-check worker: each due text checked again, its verdict settled
        by its kind's `settle`; returns how many were settled."""
        if self.checker is None:
            return 0
        now, settled = clock.utcnow(), 0
        for doc in await text_checks.due(self.db, now, limit):
            if not await leases.take(self.db.text_checks, doc, "taken", self.owner, now + RECHECK_LEASE,
                                     {"next_attempt_at": now + RECHECK_LEASE}):
                continue
            try:
                verdict = await self.checker.check_text(doc["openid"], SCENES[doc["kind"]], doc["text"])
            except UpstreamFailure as exc:
                attempts = doc.get("attempts", 0) + 1
                wait = min(RECHECK_BACKOFF_CAP, timedelta(seconds=5 * 2 ** min(attempts, 12)))
                status = "pending" if attempts < MAX_RECHECKS else "failed"
                await leases.record(self.db.text_checks, doc["_id"], "taken", self.owner,
                                    {"status": status, "next_attempt_at": clock.utcnow() + wait,
                                     "last_error": str(exc)[:200]})
                continue
            metrics.CONTENT_CHECKS.labels(doc["kind"], verdict).inc()
            await settle[doc["kind"]](doc["ref"], doc["text"], verdict)
            await leases.record(self.db.text_checks, doc["_id"], "taken", self.owner,
                                {"status": "done", "verdict": verdict, "done_at": clock.utcnow()})
            log.info("re-checked %s: %s", doc["_id"], verdict)
            settled += 1
        return settled


async def settle_wish(db: AsyncDatabase, moderation: Moderation, order_id: str, text: str, verdict: str) -> None:
    """A hidden wish's re-check: shown once it passes (storage/gifts.py)."""
    await gifts.settle_wish(db, order_id, text, moderation.shown(verdict), verdict, clock.utcnow())


def recheck_worker(moderation: Moderation, settle: dict[str, Settle], interval: float = 5.0) -> Loop:
    """The re-check worker of a scheduler-role process (leases make any number of them safe)."""
    return Loop("content re-check", lambda: moderation.recheck(settle), interval)
