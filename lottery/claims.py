"""Claims: every won item is claimed by its winner with a postal address before a deadline
(7 days after the win by default), shipped by the operator, delivered; an item left unclaimed
past its deadline expires, and a bought gift's expired item is refunded.

Claims are opened in the background from durable records (a drawn gift's `open_claims` outbox
record, a direct gift's join), and on demand when a winner claims first. Addresses are personal
data: the winner sees their own, the operator's shipping list shows them, every other view
masks or omits them, and no log line holds one."""
import logging
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.errors import (ClaimExpired, ClaimLocked, ClaimNotFound, Forbidden, InvalidInput, MissingParams, NotWinner,
                            WrongClaimState)
from lottery.admission import live
from lottery.gifts import drawn_winners
from lottery.roster import MAX_WINNERS, mask_name
from lottery.storage import claims as store
from lottery.storage import gifts, joins, leases, members, orders, outbox
from lottery.validate import CLAIM_ID, PHONE, POSTAL_CODE

log = logging.getLogger(__name__)

STATUSES = ("unclaimed", "claimed", "shipped", "delivered", "expired", "refunded")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Address:
    """A postal address, in the fields of `wx.chooseAddress`."""

    userName: str
    telNumber: str
    provinceName: str
    cityName: str
    countyName: str
    detailInfo: str
    postalCode: str = ""


LIMITS = {"userName": 20, "telNumber": 20, "provinceName": 20, "cityName": 20, "countyName": 20,
          "detailInfo": 120, "postalCode": 6}


def clean_address(fields: dict) -> Address:
    """An Address from its fields: each a string within its length, no control characters, a
    phone number of mainland China, a six-digit postal code when given."""
    clean = {}
    for name, limit in LIMITS.items():
        value = fields.get(name)
        if value is None or value == "":
            if name == "postalCode":
                clean[name] = ""
                continue
            raise MissingParams(f"缺少参数 {name}")
        if not isinstance(value, str):
            raise InvalidInput(f"参数 {name} 必须是字符串")
        if any(unicodedata.category(c)[0] == "C" for c in value):
            raise InvalidInput(f"参数 {name} 含有非法字符")
        value = value.strip()
        if not value or len(value) > limit:
            raise InvalidInput(f"参数 {name} 长度必须在 1 到 {limit} 之间")
        clean[name] = value
    if not PHONE.match(clean["telNumber"]):
        raise InvalidInput("手机号码格式不正确")
    if clean["postalCode"] and not POSTAL_CODE.match(clean["postalCode"]):
        raise InvalidInput("邮政编码必须是 6 位数字")
    return Address(**clean)


def masked_address(address: dict) -> dict:
    """What a list may show of an address: the region, the name's first character, the phone's
    last four digits."""
    return {"userName": mask_name(address["userName"]), "telNumber": "*" * 7 + address["telNumber"][-4:],
            "provinceName": address["provinceName"], "cityName": address["cityName"],
            "countyName": address["countyName"], "detailInfo": "***"}


def claim_view(claim: dict, address: str = "none") -> dict:
    """A claim; `address`: "full" (its winner, the operator), "masked", or "none"."""
    view = {"claim_id": claim["_id"], "order_id": claim["order_id"], "item_index": claim["item_index"],
            "item": {"name": claim["item"]["name"], "image": claim["item"].get("image", "")},
            "status": claim["status"], "won_at": clock.iso(claim["won_at"]),
            "deadline_at": clock.iso(claim["deadline_at"]), "claimed_at": clock.iso(claim.get("claimed_at")),
            "shipped_at": clock.iso(claim.get("shipped_at")), "delivered_at": clock.iso(claim.get("delivered_at")),
            "carrier": claim.get("carrier"), "tracking_no": claim.get("tracking_no")}
    if claim.get("address") and address != "none":
        view["address"] = claim["address"] if address == "full" else masked_address(claim["address"])
    return view


class Claims:
    """Opening claims, claiming, shipping, and the deadline."""

    def __init__(self, db: AsyncDatabase, claim_days: float = 7, remind_before: timedelta = timedelta(hours=24),
                 lease: timedelta = timedelta(seconds=60)) -> None:
        self.db = db
        self.keep = timedelta(days=claim_days)
        self.remind_before = remind_before
        self.lease = lease
        self.owner = leases.owner_id()

    def new_claim(self, gift: dict, index: int, winner_id: str, won_at: datetime, subscribed: list[str]) -> dict:
        """An unclaimed claim. `subscribed`: the templates the winner accepted when joining, so
        the deadline's reminder reaches them (giving the address replaces them with the
        templates accepted then)."""
        deadline = won_at + self.keep
        return {"_id": store.claim_id(gift["_id"], index), "order_id": gift["_id"], "item_index": index,
                "item": gift["items"][index], "winner_id": winner_id, "status": "unclaimed",
                "won_at": won_at, "deadline_at": deadline, "remind_at": deadline - self.remind_before,
                "subscribed": subscribed, "version": 1}

    # The winner

    async def give_address(self, gift: dict, join: dict | None, member_id: str, address: Address,
                           subscribed: list[str]) -> dict:
        """Claim the item this member won of `gift` (as read with their login key), or change
        its address until it ships. Racing taps give one claim (its id is the item's)."""
        gift = live(gift)
        index, won_at = won_item(gift, join, member_id)
        claim_id = store.claim_id(gift["_id"], index)
        accepted = (join or {}).get("subscribed") or []
        await store.open_many(self.db, [self.new_claim(gift, index, member_id, won_at, accepted)])
        now = clock.utcnow()
        if not await store.give_address(self.db, claim_id, member_id, asdict(address), subscribed, now):
            claim = await store.get(self.db, claim_id)
            if claim["status"] in ("shipped", "delivered"):
                raise ClaimLocked()
            raise ClaimExpired()
        log.info("claim %s: address given", claim_id)
        metrics.CLAIMS.labels("address_given").inc()
        return claim_view(await store.get(self.db, claim_id), address="full")

    async def of_member(self, gift: dict, join: dict | None, member_id: str) -> dict:
        """This member's claim of what they won in `gift` (their address included): as stored,
        or, before the background has opened it, as it will be opened."""
        gift = live(gift)
        index, won_at = won_item(gift, join, member_id)
        claim = await store.get(self.db, store.claim_id(gift["_id"], index))
        return claim_view(claim or self.new_claim(gift, index, member_id, won_at, []), address="full")

    async def of_winner(self, member_id: str) -> list[dict]:
        """What this member won and where each stands (their own addresses in full)."""
        return [claim_view(c, address="full") for c in await store.of_winner(self.db, member_id, 200)]

    # The sender

    async def of_gift(self, gift: dict, member_id: str) -> list[dict]:
        """For the gift's sender: each won item's claim, the winner's name masked, no address.
        An item won moments ago is listed too, as its claim will be opened."""
        gift = live(gift)
        if gift["sender_id"] != member_id:
            raise Forbidden("只有发起人可以查看领奖情况")
        found = await store.of_gift(self.db, gift["_id"])
        found = sorted(found + await self._not_opened(gift, {c["item_index"] for c in found}),
                       key=lambda c: c["item_index"])
        people = await members.profiles(self.db, [c["winner_id"] for c in found])
        # Not the tracking number: a courier's site shows it with part of the recipient's details.
        return [{**claim_view(c), "tracking_no": None,
                 "winner": mask_name((people.get(c["winner_id"]) or {}).get("nickname") or "微信用户")}
                for c in found]

    async def _not_opened(self, gift: dict, opened: set[int]) -> list[dict]:
        """The gift's won items whose claims the background has not opened yet (it runs every
        sweep), as they will be opened: the sender's page asks the moment the gift opens."""
        if gift["method"] != "direct":
            if gift["status"] != "finished":
                return []
            won = [(member_id, index, gift["opened_at"]) for member_id, index in drawn_winners(gift).items()]
        else:
            returned = len((gift.get("draw") or {}).get("returned") or ())
            if len(opened) >= gift["items_total"] - gift["items_left"] - returned:
                return []  # every recipient's claim is open: no need to read the joins
            won = [(j["member_id"], j["item_index"], j["joined_at"])
                   for j in await joins.direct_recipients(self.db, gift["_id"], MAX_WINNERS)]
        return [self.new_claim(gift, index, member_id, won_at, []) for member_id, index, won_at in won
                if index not in opened]

    # The operator

    async def ship(self, claim_id: str, carrier: str, tracking_no: str) -> dict:
        """claimed -> shipped; the winner gets a `prize_shipped` message."""
        now = clock.utcnow()
        claim = await self._get(claim_id)
        if not await store.ship(self.db, claim_id, carrier, tracking_no, now):
            raise WrongClaimState("只有已填写地址、未发货的礼物可以发货")
        await outbox.add(self.db, [outbox.new_message(
            "prize_shipped", claim_id, claim["order_id"], claim["winner_id"],
            {"item": claim["item"]["name"], "carrier": carrier, "tracking_no": tracking_no,
             "order_id": claim["order_id"]}, claim.get("subscribed", []), now)])
        log.info("claim %s shipped", claim_id)
        metrics.CLAIMS.labels("shipped").inc()
        return claim_view(await store.get(self.db, claim_id), address="full")

    async def delivered(self, claim_id: str) -> dict:
        await self._get(claim_id)
        if not await store.delivered(self.db, claim_id, clock.utcnow()):
            raise WrongClaimState("只有已发货的礼物可以确认送达")
        metrics.CLAIMS.labels("delivered").inc()
        return claim_view(await store.get(self.db, claim_id), address="full")

    async def page(self, status: str, cursor: str = "") -> dict:
        """The operator's list of claims in a state: the shipping list (claimed) has addresses in
        full; the lists of what was shipped or ended need them no more, and mask them."""
        if status not in STATUSES:
            raise InvalidInput(f"status 必须是 {'、'.join(STATUSES)} 之一")
        after = check_claim_id(cursor) if cursor else ""
        found = await store.page(self.db, status, after, PAGE_SIZE + 1)
        address = "full" if status == "claimed" else "masked"
        return {"claims": [claim_view(c, address=address) for c in found[:PAGE_SIZE]],
                "next_cursor": found[PAGE_SIZE - 1]["_id"] if len(found) > PAGE_SIZE else None}

    async def _get(self, claim_id: str) -> dict:
        claim = await store.get(self.db, check_claim_id(claim_id))
        if claim is None:
            raise ClaimNotFound()
        return claim

    # Background (the scheduler's leader)

    async def sweep(self, limit: int = 200) -> int:
        """Open claims for new winners, remind the ones near their deadline, expire the ones past
        it and register their refunds. Returns how many claims it opened."""
        opened = await self._open_drawn(limit) + await self._open_direct(limit)
        now = clock.utcnow()
        for claim in await store.to_remind(self.db, now, limit):
            if await store.reminded(self.db, claim["_id"], claim["remind_at"]):
                await outbox.add(self.db, [outbox.new_message(
                    "claim_reminder", claim["_id"], claim["order_id"], claim["winner_id"],
                    {"item": claim["item"]["name"], "deadline": clock.shanghai_text(claim["deadline_at"])[:16],
                     "order_id": claim["order_id"]}, claim.get("subscribed", []), now)])
        for claim in await store.past_deadline(self.db, now, limit):
            if await store.expire(self.db, claim["_id"], now):
                log.info("claim %s expired unclaimed", claim["_id"])
                metrics.CLAIMS.labels("expired").inc()
        for claim in await store.refunds_to_register(self.db, limit):
            price = claim["item"].get("price")
            if price:
                await orders.register_refund(self.db, claim["order_id"], claim["item_index"], price,
                                             claim.get("refund_cause", "claim_expired"), now)
            await store.refund_registered(self.db, claim["_id"])
        return opened

    async def _open_drawn(self, limit: int) -> int:
        """Claims for the winners of drawn gifts (their `open_claims` outbox records)."""
        opened = 0
        for record in await outbox.free(self.db, "open_claims", clock.utcnow(), limit):
            if not await outbox.take(self.db, record, self.owner, clock.utcnow() + self.lease):
                continue
            gift = await gifts.get(self.db, record["order_id"])
            if gift is not None and gift["status"] != "finished":
                await outbox.again_soon(self.db, record["_id"], self.owner, clock.utcnow(), self.lease)
                continue
            if gift is not None:
                won_at, winners = gift["opened_at"], drawn_winners(gift)
                accepted = await joins.subscriptions(self.db, gift["_id"], winners)
                opened += await store.open_many(self.db, [
                    self.new_claim(gift, index, member_id, won_at, accepted.get(member_id, []))
                    for member_id, index in winners.items()])
            await outbox.finish(self.db, record["_id"], self.owner, clock.utcnow(), {})
        return opened

    async def _open_direct(self, limit: int) -> int:
        """Claims for the joiners of direct gifts (each join holds its item)."""
        received = await joins.to_claim(self.db, limit)
        if not received:
            return 0
        about = {g["_id"]: g for g in await gifts.get_many(self.db, {j["order_id"] for j in received})}
        opened = await store.open_many(self.db, [
            self.new_claim(about[j["order_id"]], j["item_index"], j["member_id"], j["joined_at"], j.get("subscribed") or [])
            for j in received if j["order_id"] in about])
        await joins.mark_claim_opened(self.db, [j["_id"] for j in received])
        return opened


def won_item(gift: dict, join: dict | None, member_id: str) -> tuple[int, datetime]:
    """(item index, when it was won) of this member's win in this gift; NotWinner otherwise."""
    if gift["method"] == "direct":
        if join is None or join.get("outcome") != "won":
            raise NotWinner()
        return join["item_index"], join["joined_at"]
    if gift["status"] != "finished":
        raise NotWinner("还没有开奖")
    index = drawn_winners(gift).get(member_id)
    if index is None:
        raise NotWinner()
    return index, gift["opened_at"]




def check_claim_id(value: str) -> str:
    if not isinstance(value, str) or not CLAIM_ID.match(value):
        raise InvalidInput("参数 claim_id 格式错误")
    return value
