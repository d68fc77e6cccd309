"""Gifts: creation, what a member may do with one, and joining."""
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, NamedTuple

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness
from lottery.accounts import Accounts
from lottery.errors import (AlreadyJoined, GiftClosed, GiftFull, GiftNotFound, GiftOpened,
                            InvalidInput, LotteryError, MissingParams, NoItemsLeft, OwnGift)
from lottery.storage import gifts as store
from lottery.storage import joins
from lottery.storage import members
from lottery.validate import check_identifier

log = logging.getLogger(__name__)

# Opening methods and their names in the seed, which the mini-program compares literally and
# messages show.
METHOD_NAMES = {"direct": "直接送礼", "full": "满人开奖", "timed": "定时开奖"}
METHODS = tuple(METHOD_NAMES)
# me.state values, exactly one per member and gift.
STATES = ("can_join", "joined_waiting", "won", "lost", "full", "closed", "own_gift")

MAX_ITEMS = 1000
MAX_SEATS = 10000  # the seat list lives in the gift document, so it is bounded
DEFAULT_FULL_DEADLINE = timedelta(hours=24)
MAX_DEADLINE_HOURS = 24 * 30
MAX_OPEN_AHEAD = timedelta(days=366)
DEFAULT_WISH = "恭喜发财，大吉大利"


@dataclass(frozen=True)
class Item:
    name: str
    image: str = ""


@dataclass(frozen=True)
class GiftSpec:
    """What a new gift is: who sends it, how it opens, what is in it."""

    sender_openid: str
    method: str
    items: list[Item]
    open_number: int | None = None  # full: joins that open it
    open_at: datetime | None = None  # timed: when it opens
    wish: str = DEFAULT_WISH
    deadline_hours: int | None = None  # full: opens among whoever joined by then
    # Subscribe-message templates the sender accepted when paying (their result summary).
    sender_subscribed: list[str] = field(default_factory=list)


class JoinResult(NamedTuple):
    gift: dict
    state: str  # "joined_waiting", or "won" for a direct gift
    item: dict | None


def new_seed() -> tuple[str, str]:
    """A secret 256-bit draw seed from the OS CSPRNG and its SHA-256 commitment (both hex)."""
    seed = secrets.token_bytes(32)
    return seed.hex(), hashlib.sha256(seed).hexdigest()


def public_view(gift: dict) -> dict:
    """The gift as anyone may see it."""
    return {
        "order_id": gift["_id"],
        "sender": {"name": gift["sender"]["name"], "avatar": gift["sender"]["avatar"]},
        "method": gift["method"],
        "open_number": gift.get("open_number"),
        "open_at": clock.iso(gift.get("open_at")),
        "deadline_at": clock.iso(gift.get("deadline_at")),
        "wish": gift["wish"],
        "status": gift["status"],
        "joined_count": gift["joined_count"],
        "items_total": gift["items_total"],
        "items_left": gift["items_left"],
        "items": [{"name": i["name"], "image": i.get("image", "")} for i in gift["items"]],
        "seed_commitment": gift["seed_commitment"],
        "created_at": clock.iso(gift["created_at"]),
        "opened_at": clock.iso(gift.get("opened_at")),
        "version": gift["version"],
    }


def member_view(gift: dict, join: dict | None, member_id: str, now: datetime,
                winners: dict[str, int] | None = None) -> dict:
    """`me`: the one state this member is in for this gift, and their item if they won.
    (`winners`: `drawn_winners(gift)`, for callers that build many views of one gift.)"""
    if member_id == gift["sender_id"]:
        return {"state": "own_gift"}
    if join is not None:
        me = {"state": "joined_waiting", "joined_at": clock.iso(join["joined_at"])}
        index = won_item_index(gift, join, member_id, winners)
        if index is not None:
            me.update(state="won", item=gift["items"][index])
        elif gift["status"] == "finished":
            me["state"] = "lost"
        if gift["status"] == "finished" and gift["method"] != "direct":
            # The member's name in the public proof, so they can find themselves in it.
            me["participant"] = fairness.pseudonym(gift["_id"], member_id)
        return me
    return {"state": admission_state(gift, now)}


def drawn_winners(gift: dict) -> dict[str, int]:
    """member id -> item index, from a drawn gift's committed result (empty before the draw)."""
    return {member_id: index for index, member_id in enumerate((gift.get("draw") or {}).get("winners") or ())}


def won_item_index(gift: dict, join: dict, member_id: str, winners: dict[str, int] | None = None) -> int | None:
    """The item this member's join won, or None. A drawn gift's result is its `draw.winners`
    (member ids in item order), committed with the finish; the join records' outcomes are
    copied after it, so they may lag. A direct gift's join holds its item from the start."""
    if gift["method"] != "direct":
        return (drawn_winners(gift) if winners is None else winners).get(member_id)
    return join.get("item_index") if join.get("outcome") == "won" else None


def admission_state(gift: dict, now: datetime) -> str:
    """For a member who has not joined: can_join, full or closed."""
    status, method = gift["status"], gift["method"]
    if status == "finished":
        return "closed"
    if method == "full" and (status != "open" or gift["seats_left"] <= 0):
        return "full"
    if status != "open":
        return "closed"
    if method == "direct" and gift["items_left"] <= 0:
        return "closed"
    if method == "timed" and clock.as_utc(gift["open_at"]) <= now:
        return "closed"
    return "can_join"


def is_live(gift: dict | None) -> bool:
    """Whether a stored gift exists for members: unknown and unpaid gifts are "not found"."""
    return gift is not None and bool(gift.get("paid"))


class Gifts:
    """Creating, reading and joining gifts."""

    def __init__(self, db: AsyncDatabase, accounts: Accounts,
                 on_ready: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.accounts = accounts
        # Called with the order id when a join takes the last seat of an open-when-full gift
        # (the draw's open_soon). Must not block: the joiner's answer does not wait for it.
        self.on_ready = on_ready

    async def create(self, spec: GiftSpec) -> dict:
        """Create a paid gift; returns the stored document."""
        now = clock.utcnow()
        check_gift(spec, now)
        open_at = deadline_at = None
        if spec.method == "full":
            deadline_at = now + (timedelta(hours=spec.deadline_hours) if spec.deadline_hours
                                 else DEFAULT_FULL_DEADLINE)
        if spec.method == "timed":
            open_at = clock.to_millis(spec.open_at)
        sender_id = await self.accounts.ensure_member(spec.sender_openid)
        sender = await members.get(self.db, sender_id) or {}
        seed, commitment = new_seed()
        gift = {
            "_id": secrets.token_hex(12),
            "sender_id": sender_id,
            "sender": {"name": sender.get("nickname") or "微信用户",
                       "avatar": sender.get("avatar_url") or ""},
            "method": spec.method, "open_number": spec.open_number if spec.method == "full" else None,
            "open_at": open_at, "deadline_at": deadline_at, "wish": spec.wish,
            "items": [{"name": item.name, "image": item.image} for item in spec.items],
            # When the draw is due without anyone asking (timed: open_at; full: its deadline),
            # one indexed field for the scheduler; `scheduled` once it has its job.
            "due_at": open_at or deadline_at, "scheduled": False,
            "items_total": len(spec.items), "items_left": len(spec.items),
            "seats_left": spec.open_number if spec.method == "full" else 0, "claimants": [],
            "joined_count": 0, "status": "open", "paid": True, "version": 1,
            "sender_subscribed": list(spec.sender_subscribed),
            "seed": seed, "seed_commitment": commitment,
            "created_at": now, "updated_at": now,
        }
        await store.insert(self.db, gift)
        log.info("gift %s created (%s, %d items)", gift["_id"], spec.method, len(spec.items))
        return gift

    async def get(self, order_id: str) -> dict:
        """The gift, or GiftNotFound when unknown or unpaid."""
        gift = await store.get(self.db, check_identifier(order_id))
        if not is_live(gift):
            raise GiftNotFound()
        return gift

    async def look(self, order_id: str, member_id: str) -> tuple[dict, dict]:
        """The gift and this member's view of it."""
        gift = await self.get(order_id)
        join = await joins.get(self.db, order_id, member_id)
        return gift, member_view(gift, join, member_id, clock.utcnow())

    async def join(self, order_id: str, member_id: str, form_id: str = "",
                   subscribed: list[str] | None = None) -> JoinResult:
        """Join a gift. Three database round trips with the login lookup: the atomic claim,
        then the join record. Refusals are explained with one more read."""
        check_identifier(order_id)
        now = clock.utcnow()
        gift = await store.claim_seat(self.db, order_id, member_id, now)
        if gift is None:
            raise await self._refusal(order_id, member_id, now)
        join = joins.new_join(order_id, member_id, now, form_id, subscribed)
        item = None
        if gift["method"] == "direct":
            # Claims never give items back, so the n-th claim owns item n-1.
            index = gift["items_total"] - gift["items_left"] - 1
            # The join itself is the durable record the notification worker delivers from.
            join.update(outcome="won", item_index=index, notify="pending")
            item = gift["items"][index]
        try:
            await joins.insert(self.db, join)
        except AlreadyJoined:
            if gift["method"] == "timed":
                await store.release_timed_seat(self.db, order_id)
            raise
        if gift["status"] == "ready" and self.on_ready is not None:
            self.on_ready(order_id)
        return JoinResult(gift, "won" if item else "joined_waiting", item)

    async def _refusal(self, order_id: str, member_id: str, now: datetime) -> LotteryError:
        """Why a claim was refused, read after the fact (the claim itself was atomic)."""
        gift = await store.get(self.db, order_id)
        if not is_live(gift):
            return GiftNotFound()
        if gift["sender_id"] == member_id:
            return OwnGift()
        if await joins.get(self.db, order_id, member_id) is not None or (
                gift["method"] != "timed" and await store.is_claimant(self.db, order_id, member_id)):
            return AlreadyJoined()
        if gift["method"] == "direct" and gift["items_left"] <= 0:
            return NoItemsLeft()
        if gift["method"] == "full" and gift["seats_left"] <= 0:
            return GiftFull()  # as the seed said, even once the full gift has opened
        if gift["status"] == "finished":
            return GiftOpened()
        if gift["method"] == "full":
            return GiftClosed()
        if gift["status"] != "open" or clock.as_utc(gift["open_at"]) <= now:
            return GiftClosed()
        return LotteryError("参与失败，请重试")


def check_gift(spec: GiftSpec, now: datetime) -> None:
    """The rules a new gift must satisfy; InvalidInput (or MissingParams) saying which it breaks."""
    if spec.method not in METHODS:
        raise InvalidInput("method 必须是 direct、full 或 timed")
    if not spec.items:
        raise InvalidInput("items 必须是非空列表")
    if len(spec.items) > MAX_ITEMS:
        raise InvalidInput(f"items 最多 {MAX_ITEMS} 个")
    for item in spec.items:
        if item.image and not item.image.startswith(("https://", "http://", "/")):
            raise InvalidInput("image 必须是 URL")
    if spec.method == "full":
        if spec.open_number is None:
            raise MissingParams()
        if not 1 <= spec.open_number <= MAX_SEATS:
            raise InvalidInput(f"参数 open_number 必须在 1 到 {MAX_SEATS} 之间")
        if spec.deadline_hours is not None and not 1 <= spec.deadline_hours <= MAX_DEADLINE_HOURS:
            raise InvalidInput(f"参数 deadline_hours 必须在 1 到 {MAX_DEADLINE_HOURS} 之间")
    if spec.method == "timed":
        if spec.open_at is None:
            raise MissingParams()
        if spec.open_at <= now:
            raise InvalidInput("open_at 必须在未来")
        if spec.open_at > now + MAX_OPEN_AHEAD:
            raise InvalidInput("open_at 不能超过一年")

