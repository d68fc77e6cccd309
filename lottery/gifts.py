"""Gifts: creation, what a member may do with one, and joining."""
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, NamedTuple

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from lottery import clock, fairness, logs, metrics
from lottery.accounts import Accounts, key_digest
from lottery.admission import Admission, Joiner, live, receipt_of
from lottery.backoff import database_away
from lottery.entry import (EntryConditions, EntryProof, UserDataDecrypter, check_phrase, new_conditions,
                           public_conditions)
from lottery.errors import (JoinOutcomeUnknown, InvalidInput, LotteryError, MissingParams)
from lottery.group_commit import GroupCommit
from lottery.images import ImageSources
from lottery.risk import RiskGate
from lottery.storage import gifts as store
from lottery.receipts import ReceiptKey
from lottery.storage import joins, login_keys, members
from lottery.validate import check_identifier

log = logging.getLogger(__name__)

# Opening methods and their names in the seed, which the mini-program compares literally and
# messages show.
METHOD_NAMES = {"direct": "直接送礼", "full": "满人开奖", "timed": "定时开奖"}
METHODS = tuple(METHOD_NAMES)
# me.state values, exactly one per member and gift.
STATES = ("can_join", "joined_waiting", "won", "lost", "full", "closed", "own_gift")

MAX_ITEMS = 1000
IMAGE_RULE = "image 必须是本站 /static/ 下的图片，或允许的图片域名上的 https 地址"
MAX_SEATS = 10000  # the seat list lives in the gift document, so it is bounded
# A direct or open-when-full gift closes this long after it starts (unless told): a full gift then
# opens among whoever joined; what nobody received or won of a bought gift is refunded.
DEFAULT_DEADLINE = timedelta(hours=24)
MAX_DEADLINE_HOURS = 24 * 30
MAX_OPEN_AHEAD = timedelta(days=366)
DEFAULT_WISH = "恭喜发财，大吉大利"
MAX_TIER = 10
MAX_TIER_NAME = 16
TIER_NAMES = ("", "一等奖", "二等奖", "三等奖", "四等奖", "五等奖", "六等奖", "七等奖", "八等奖", "九等奖", "十等奖")


@dataclass(frozen=True)
class Item:
    name: str
    image: str = ""
    # A bought gift's item: the product it is one unit of, and its price as charged (fen).
    product_id: str = ""
    price: int = 0
    # A prize tier: its rank (1 is the first tier, drawn first) and name (一等奖 by default); 0: none.
    tier: int = 0
    tier_name: str = ""


@dataclass(frozen=True)
class GiftSpec:
    """What a new gift is: who sends it, how it opens, what is in it."""

    sender_openid: str
    method: str
    items: list[Item]
    open_number: int | None = None  # full: joins that open it
    open_at: datetime | None = None  # timed: when it opens
    wish: str = DEFAULT_WISH
    deadline_hours: int | None = None  # direct, full: closes after this many hours
    # Subscribe-message templates the sender accepted when paying (their result summary).
    sender_subscribed: list[str] = field(default_factory=list)
    # Entry conditions (lottery/entry.py): a pass phrase joiners must give; only one WeChat group.
    pass_phrase: str | None = None
    group_only: bool = False


class JoinResult(NamedTuple):
    gift: dict
    state: str  # "joined_waiting", or "won" for a direct gift
    item: dict | None
    receipt: dict | None = None  # the signed receipt of the join (lottery/receipts.py)


def new_seed() -> tuple[str, str]:
    """A secret 256-bit draw seed from the OS CSPRNG and its SHA-256 commitment (both hex)."""
    seed = secrets.token_bytes(32)
    return seed.hex(), hashlib.sha256(seed).hexdigest()


def item_view(item: dict) -> dict:
    """An item as members see it: what it is and its prize tier, never what the sender paid for
    it (nor the product it came from)."""
    view = {"name": item["name"], "image": item.get("image", "")}
    if item.get("tier"):
        view["tier"] = dict(item["tier"])
    return view


def item_tiers(items: list[dict]) -> list[list] | None:
    """Each item's tier `[rank, name]`, as the fairness proof covers them; None for a gift
    without tiers (its proof is exactly as before tiers existed)."""
    if not any(item.get("tier") for item in items):
        return None
    return [[item["tier"]["rank"], item["tier"]["name"]] for item in items]


def prize_name(item: dict) -> str:
    """An item as a message names it: with its tier (一等奖：口红) when it has one."""
    return f"{item['tier']['name']}：{item['name']}" if item.get("tier") else item["name"]


def tier_name(item: Item) -> str:
    return item.tier_name or TIER_NAMES[item.tier]


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
        "items": [item_view(item) for item in gift["items"]],
        "seed_commitment": gift["seed_commitment"],
        "created_at": clock.iso(gift["created_at"]),
        "opened_at": clock.iso(gift.get("opened_at")),
        "version": gift["version"],
        "entry": public_conditions(gift),
        # Once the draw froze the participant list: its hash, size, time and beacon round.
        "freeze": gift.get("freeze"),
    }


def member_view(gift: dict, join: dict | None, member_id: str, now: datetime,
                winners: dict[str, int] | None = None) -> dict:
    """`me`: the one state this member is in for this gift, and their item if they won.
    (`winners`: `drawn_winners(gift)`, for callers that build many views of one gift.)"""
    if member_id == gift["sender_id"]:
        return {"state": "own_gift"}
    if join is not None:
        me = {"state": "joined_waiting", "joined_at": clock.iso(join["joined_at"])}
        if join.get("sequence") is not None and "receipt" in join:
            me["receipt"] = receipt_of(gift["_id"], member_id, join)
        index = won_item_index(gift, join, member_id, winners)
        if index is not None:
            me.update(state="won", item=item_view(gift["items"][index]))
        elif gift["status"] == "finished":
            me["state"] = "lost"
        if gift["status"] == "finished" and gift["method"] != "direct":
            # The member's name in the public proof, so they can find themselves in it (the
            # receipt names it already: a hash less per watcher at a result's fan-out).
            me["participant"] = me["receipt"]["participant"] if "receipt" in me else fairness.pseudonym(gift["_id"], member_id)
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
    if method in ("direct", "full") and gift.get("deadline_at") and clock.as_utc(gift["deadline_at"]) <= now:
        return "closed"
    if method == "timed" and clock.as_utc(gift["open_at"]) <= now:
        return "closed"
    return "can_join"


class Gifts:
    """Creating, reading and joining gifts."""

    def __init__(self, db: AsyncDatabase, accounts: Accounts, receipt_key: ReceiptKey,
                 on_ready: Callable[[str], None] | None = None, images: ImageSources = ImageSources(),
                 decrypt: UserDataDecrypter | None = None, risk: RiskGate | None = None) -> None:
        self.db = db
        self.accounts = accounts
        self.admission = Admission(db, receipt_key, on_ready)  # the join's writes, grouped per gift
        self.reads = GroupCommit(self._read, max_batch=100_000)  # a gift's concurrent reads, as one
        self.entry = EntryConditions(db, decrypt)  # pass phrases and groups
        self.risk = risk  # WeChat's user risk rank, when configured (off by default)
        self.images = images  # where item images may come from

    async def create(self, spec: GiftSpec) -> dict:
        """Create a paid gift; returns the stored document."""
        now = clock.utcnow()
        check_gift(spec, now, self.images)
        sender_id = await self.accounts.ensure_member(spec.sender_openid)
        sender = await members.get(self.db, sender_id) or {}
        gift = new_gift(spec, sender_id, sender, now)
        await store.insert(self.db, gift)
        log.info("gift %s created (%s, %d items)", gift["_id"], spec.method, len(spec.items))
        return gift

    async def get(self, order_id: str) -> dict:
        """The gift, or GiftNotFound when unknown or unpaid."""
        return live(await store.get(self.db, check_identifier(order_id)))

    async def shared_get(self, order_id: str) -> dict | None:
        """The gift (or None), read once for all the requests that want it at this moment."""
        return await self.reads.submit(check_identifier(order_id), None, object())

    async def _read(self, order_id: str, waiting: list[None], release: Callable[[], None]) -> list[dict | None]:
        gift = await store.get(self.db, order_id)
        return [gift] * len(waiting)

    async def for_member(self, login_key: str | None, order_id: str) -> tuple[str | None, dict | None, dict | None]:
        """The member behind a login key, the gift and their join, in one database round trip:
        (member id or None, gift or None, join or None)."""
        if not login_key:
            return None, None, None
        return await login_keys.member_with_gift(self.db, key_digest(login_key), clock.utcnow(),
                                                 check_identifier(order_id), store.PUBLIC)

    async def look(self, order_id: str, member_id: str) -> tuple[dict, dict]:
        """The gift and this member's view of it."""
        gift = await self.get(order_id)
        join = await joins.get(self.db, order_id, member_id)
        return gift, member_view(gift, join, member_id, clock.utcnow())

    async def join(self, order_id: str, member_id: str, form_id: str = "",
                   subscribed: list[str] | None = None, gift: dict | None = None,
                   proof: EntryProof = EntryProof(), client_ip: str = "") -> JoinResult:
        """Join a gift (`gift`: as just read, if the caller has it; `proof`: what its entry
        conditions ask for). The writes go with the other joins of the gift at that moment
        (lottery/admission.py); a gift with entry conditions adds its checks. Refusals are
        explained with more reads."""
        try:
            gift = live(gift if gift is not None else await store.get(self.db, check_identifier(order_id)))
        except LotteryError as exc:
            metrics.JOINS.labels("unknown", exc.code).inc()
            raise
        try:
            try:
                if self.risk is not None:
                    await self.risk.admit(member_id, client_ip)
                conditions = await self.entry.admit(gift, member_id, proof)
                admitted = await self.admission.join(
                    Joiner(gift, member_id, form_id, subscribed, logs.REQUEST_ID.get()), conditions)
            except PyMongoError as exc:
                # The claim or the join record was sent and no answer came: it may have been
                # applied. Say so; a retry is safe (one join per member).
                if database_away(exc):
                    raise JoinOutcomeUnknown() from exc
                raise
        except LotteryError as exc:
            metrics.JOINS.labels(gift["method"], exc.code).inc()
            raise
        metrics.JOINS.labels(gift["method"], "joined").inc()
        if admitted.item_index is not None:
            return JoinResult(admitted.gift, "won", item_view(gift["items"][admitted.item_index]), None)
        return JoinResult(admitted.gift, "joined_waiting", None, admitted.receipt)


def new_gift(spec: GiftSpec, sender_id: str, sender: dict, now: datetime) -> dict:
    """The document of a new paid gift (its rules checked by check_gift)."""
    open_at = deadline_at = None
    if spec.method in ("direct", "full"):
        deadline_at = now + (timedelta(hours=spec.deadline_hours) if spec.deadline_hours else DEFAULT_DEADLINE)
    if spec.method == "timed":
        open_at = clock.to_millis(spec.open_at)
    seed, commitment = new_seed()
    order_id = secrets.token_hex(12)
    entry = new_conditions(order_id, spec.pass_phrase, spec.group_only)
    return {
        "_id": order_id,
        **({"entry": entry} if entry else {}),
        "sender_id": sender_id,
        "sender": {"name": sender.get("nickname") or "微信用户", "avatar": sender.get("avatar_url") or ""},
        "method": spec.method, "open_number": spec.open_number if spec.method == "full" else None,
        "open_at": open_at, "deadline_at": deadline_at, "wish": spec.wish,
        # Tiered items first tier first: the draw gives item 0 first, so tiers go in order.
        "items": [item_doc(item) for item in sorted(spec.items, key=lambda item: item.tier)],
        # When the draw is due without anyone asking (timed: open_at; full, direct: the deadline), one
        # indexed field for the scheduler.
        "due_at": open_at or deadline_at,
        "items_total": len(spec.items), "items_left": len(spec.items),
        "seats_left": spec.open_number if spec.method == "full" else 0, "claimants": {},
        "joined_count": 0, "status": "open", "paid": True, "version": 1,
        "sender_subscribed": list(spec.sender_subscribed),
        "seed": seed, "seed_commitment": commitment,
        "created_at": now, "updated_at": now,
    }


def item_doc(item: Item) -> dict:
    doc = {"name": item.name, "image": item.image}
    if item.tier:
        doc["tier"] = {"rank": item.tier, "name": tier_name(item)}
    if item.product_id:
        doc.update(product_id=item.product_id, price=item.price)
    return doc


def check_gift(spec: GiftSpec, now: datetime, images: ImageSources | None = ImageSources()) -> None:
    """The rules a new gift must satisfy; InvalidInput (or MissingParams) saying which it breaks."""
    if spec.method not in METHODS:
        raise InvalidInput("method 必须是 direct、full 或 timed")
    if not spec.items:
        raise InvalidInput("items 必须是非空列表")
    if len(spec.items) > MAX_ITEMS:
        raise InvalidInput(f"items 最多 {MAX_ITEMS} 个")
    check_tiers(spec.items)
    if spec.pass_phrase:
        check_phrase(spec.pass_phrase)
    for item in spec.items:
        # `images` None: the items come from the catalogue, which checked its images.
        if images is not None and item.image and not images.allows(item.image):
            raise InvalidInput(IMAGE_RULE)
    if spec.method == "full":
        if spec.open_number is None:
            raise MissingParams()
        if not 1 <= spec.open_number <= MAX_SEATS:
            raise InvalidInput(f"参数 open_number 必须在 1 到 {MAX_SEATS} 之间")
    if spec.method in ("direct", "full") and spec.deadline_hours is not None \
            and not 1 <= spec.deadline_hours <= MAX_DEADLINE_HOURS:
        raise InvalidInput(f"参数 deadline_hours 必须在 1 到 {MAX_DEADLINE_HOURS} 之间")
    if spec.method == "timed":
        if spec.open_at is None:
            raise MissingParams()
        if spec.open_at <= now:
            raise InvalidInput("open_at 必须在未来")
        if spec.open_at > now + MAX_OPEN_AHEAD:
            raise InvalidInput("open_at 不能超过一年")



def check_tiers(items: list[Item]) -> None:
    """Either every item has a tier or none does; ranks 1 to 10; one name per rank."""
    tiered = [item for item in items if item.tier]
    if not tiered:
        if any(item.tier_name for item in items):
            raise InvalidInput("tier_name 需要与 tier 一起给出")
        return
    if len(tiered) != len(items):
        raise InvalidInput("设置奖项等级时，每件礼品都要有 tier")
    names: dict[int, str] = {}
    for item in items:
        if isinstance(item.tier, bool) or not isinstance(item.tier, int) or not 1 <= item.tier <= MAX_TIER:
            raise InvalidInput(f"tier 必须是 1 到 {MAX_TIER} 之间的整数")
        name = tier_name(item)
        if not name.strip() or len(name) > MAX_TIER_NAME:
            raise InvalidInput(f"tier_name 必须是 1 到 {MAX_TIER_NAME} 个字")
        if names.setdefault(item.tier, name) != name:
            raise InvalidInput("同一等级的奖项名称必须相同")
