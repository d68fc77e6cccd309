"""Who is told what, once: turning a gift's durable records into notification entries.

Two sources feed the outbox (`notifications`):
- a direct gift's join (`outcome: won`, `notify: pending`, written by the join itself) becomes
  one `gift_received` message for the joiner;
- the draw's `gift_opened` record becomes one message per participant (`gift_won` or
  `gift_lost`) and a `gift_summary` for the sender. The participants' messages are queued as
  pages (`page_size` members, outbox `participants` records, numbered: the winners' pages first,
  then the others by a hash of the member id), written in one step however large the gift; the delivery takes a
  page when it has nothing due and makes its entries already claimed for itself, then sends them
  (notify/worker.py). So the outbox holds the messages being sent rather than a gift's hundred
  thousand at once (on the embedded engine the due-entry query costs as many entries as are
  pending), a page's messages cost no claim of their own, and pages are shared by however many
  worker processes run.

Each entry's id is (gift, member, kind), so expanding a record or a page twice (a retry, a
second process, a takeover after a crash) adds nothing; a page's id and members depend only on
the drawn gift, so a takeover writes the pages the first attempt wrote. Whether a member
subscribed is decided here, from the template ids they accepted on join (`subscribed`); entries nobody accepted are created as
`not_subscribed`, so support sees every participant and the worker never calls WeChat for them.
Sending is `notify/`'s job."""
import hashlib
import logging
from contextlib import aclosing
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness, logs
from lottery.errors import InvalidInput
from lottery.gifts import METHOD_NAMES, drawn_winners, prize_name
from lottery.storage import gifts, joins, leases, members, outbox, proofs
from lottery.storage import notifications as store
from lottery.validate import check_identifier

log = logging.getLogger(__name__)

# Participants a page (the default of --notify_page_size), and joins read a batch.
PAGE_SIZE = 500
READ_BATCH = 500
# Messages that may come more than once per gift and member: their entries carry the record's key
# (a refund's number). The others keep one entry per gift, member and kind.
MESSAGE_KEYS = {"gift_refunded": True}


def new_entry(order_id: str, member_id: str, kind: str, openid: str, template_id: str,
              accepted: bool, values: dict[str, str], now: datetime, key: str | None = None) -> dict:
    """One outbox entry; `pending` only when there is a template the member accepted."""
    if not template_id:
        status, error = "not_subscribed", f"no template configured for {kind}"
    elif not accepted:
        status, error = "not_subscribed", "the member did not accept this template"
    elif not openid:
        status, error = "failed", "the member has no openid"
    else:
        status, error = "pending", None
    return {"_id": store.entry_id(order_id, member_id, kind, key), "order_id": order_id,
            "member_id": member_id, "kind": kind, "touser": openid, "template_id": template_id,
            "values": values, "status": status, "attempts": 0, "next_attempt_at": now,
            "last_error": error, "lease_owner": None, "lease_until": None,
            "created_at": now, "updated_at": now, "request_id": logs.REQUEST_ID.get(),
            **({} if status == "pending" else {"final_at": now})}


def gift_values(gift: dict) -> dict[str, str]:
    """The values every message about this gift may use (see notify/templates.py VALUES)."""
    draw = gift.get("draw") or {}
    opened_at = gift.get("opened_at")
    return {"order_id": gift["_id"], "wish": gift.get("wish") or "",
            "sender": (gift.get("sender") or {}).get("name") or "微信用户",
            "method": METHOD_NAMES.get(gift.get("method", ""), ""),
            "participant_count": str(draw.get("participant_count", gift.get("joined_count", 0))),
            "winner_count": str(len(draw.get("winners", []))),
            "opened_at": clock.shanghai_text(opened_at)[:16] if opened_at else ""}


def participant_pages(gift: dict, participants: list[dict], size: int = PAGE_SIZE) -> dict[str, list[dict]]:
    """page name -> its members, for these joins of a drawn gift: the winners' pages first, in
    the items' order, then the others' by a hash of the member id, as many as the draw's frozen
    count needs; pages are numbered in that order (`00000`, ...). The pages depend only on the
    gift and who joined, never on the order the joins were read in, so writing them again writes
    the same pages."""
    winners = drawn_winners(gift)
    items = gift.get("items") or []
    won = sorted((j for j in participants if j["member_id"] in winners), key=lambda j: winners[j["member_id"]])
    others = sorted((j for j in participants if j["member_id"] not in winners), key=lambda j: j["member_id"])
    expected = (gift.get("draw") or {}).get("participant_count", len(participants)) - len(winners)
    buckets = max(1, -(-expected // size))
    won_pages = -(-len(won) // size)
    pages: dict[int, list[dict]] = {}
    for start in range(0, len(won), size):
        pages[start // size] = [
            {"member_id": j["member_id"], "subscribed": j.get("subscribed") or [],
             "item": prize_name(items[winners[j["member_id"]]]) if winners[j["member_id"]] < len(items) else ""}
            for j in won[start:start + size]]
    for join in others:
        digest = hashlib.blake2b(join["member_id"].encode(), digest_size=8).digest()
        page = pages.setdefault(won_pages + int.from_bytes(digest, "big") % buckets, [])
        page.append({"member_id": join["member_id"], "subscribed": join.get("subscribed") or []})
    return {f"{number:05d}": pages[number] for number in sorted(pages)}


class Notifications:
    """Expands durable records into outbox entries, and reports an order's entries."""

    def __init__(self, db: AsyncDatabase, template_ids: dict[str, str] | None = None,
                 lease: timedelta = timedelta(seconds=60), page_size: int = PAGE_SIZE) -> None:
        self.db = db
        self.template_ids = template_ids or {}
        self.lease = lease
        self.page_size = page_size
        self.owner = leases.owner_id()

    async def expand_direct_joins(self, limit: int = 500) -> int:
        """`gift_received` entries for direct-gift joins still marked `notify: pending`, then
        mark those joins done. Returns how many joins were handled."""
        received = await joins.to_notify(self.db, limit)
        if not received:
            return 0
        about = {g["_id"]: g for g in await gifts.get_many(self.db, {j["order_id"] for j in received})}
        openids = await members.openids(self.db, [j["member_id"] for j in received])
        template_id = self.template_ids.get("gift_received", "")
        now = clock.utcnow()
        entries = []
        for join in received:
            gift = about.get(join["order_id"])
            if gift is None:
                continue
            items = gift.get("items") or []
            index = join.get("item_index")
            values = {**gift_values(gift), "result": "已到账",
                      "item": prize_name(items[index]) if isinstance(index, int) and index < len(items) else "礼物"}
            with logs.bound(join.get("request_id")):  # the join's request
                entries.append(new_entry(join["order_id"], join["member_id"], "gift_received",
                                         openids.get(join["member_id"], ""), template_id,
                                         template_id in (join.get("subscribed") or []), values, now))
        await store.insert(self.db, entries)
        # Only after the entries exist: a crash in between expands again, which adds nothing.
        await joins.mark_notified(self.db, [j["_id"] for j in received])
        return len(received)

    async def expand_messages(self, limit: int = 200) -> int:
        """One entry for each `message` outbox record (a prize shipped, a claim's reminder, a
        refund): the member accepted its template if it is among the record's `subscribed`."""
        done = 0
        for record in await outbox.free(self.db, "message", clock.utcnow(), limit):
            now = clock.utcnow()
            if not await outbox.take(self.db, record, self.owner, now + self.lease):
                continue
            kind, member_id = record["message"], record["member_id"]
            template_id = self.template_ids.get(kind, "")
            openid = (await members.openids(self.db, [member_id])).get(member_id, "")
            with logs.bound(record.get("request_id")):
                entry = new_entry(record["order_id"], member_id, kind, openid, template_id,
                                  template_id in (record.get("subscribed") or []), record.get("values") or {}, now,
                                  key=MESSAGE_KEYS.get(kind) and record.get("key"))
            await store.insert(self.db, [entry])
            if await outbox.finish(self.db, record["_id"], self.owner, clock.utcnow(), {}):
                done += 1
        return done

    async def expand_opened_gifts(self, limit: int = 20) -> int:
        """Expand the `gift_opened` records nobody holds. Returns how many were completed."""
        done = 0
        for record in await outbox.free(self.db, "gift_opened", clock.utcnow(), limit):
            now = clock.utcnow()
            if await outbox.take(self.db, record, self.owner, now + self.lease):
                with logs.bound(record.get("request_id")):  # the request that opened the gift
                    if await self._expand_opened(record):
                        done += 1
        return done

    async def _expand_opened(self, record: dict) -> bool:
        order_id = record["order_id"]
        gift = await gifts.get(self.db, order_id)
        if gift is not None and gift.get("status") != "finished":
            await outbox.again_soon(self.db, record["_id"], self.owner, clock.utcnow(), self.lease)
            return False
        count = 0
        if gift is not None:
            count = await self._opened_entries(gift, record)
            if count is None:
                return False
        finished = await outbox.finish(self.db, record["_id"], self.owner, clock.utcnow(), {"notifications": count})
        if finished:
            log.info("gift %s: %d notifications queued", order_id, count)
        return finished

    async def _opened_entries(self, gift: dict, record: dict) -> int | None:
        """Pages for every participant and the sender's entry; how many messages that is (None if
        the lease was lost meanwhile)."""
        order_id = gift["_id"]
        base = gift_values(gift)
        items = gift.get("items") or []
        pages = participant_pages(gift, await self._participants(order_id), self.page_size)
        if not await outbox.renew(self.db, record["_id"], self.owner, clock.utcnow() + self.lease):
            log.warning("gift %s: lost the outbox lease while expanding; another process finishes", order_id)
            return None
        now = clock.utcnow()
        await outbox.add(self.db, [outbox.new_page(order_id, page, in_page, base, now, record.get("request_id"))
                                   for page, in_page in pages.items()])
        count = sum(len(in_page) for in_page in pages.values())
        sender_id = gift.get("sender_id")
        if sender_id:
            template_id = self.template_ids.get("gift_summary", "")
            openid = (await members.openids(self.db, [sender_id])).get(sender_id, "")
            values = {**base, "result": f"{base['winner_count']}人中奖",
                      "item": items[0]["name"] if items else ""}
            # The sender accepts templates when paying (`sender_subscribed` on the gift).
            await store.insert(self.db, [new_entry(
                order_id, sender_id, "gift_summary", openid, template_id,
                template_id in (gift.get("sender_subscribed") or []), values, clock.utcnow())])
            count += 1
        return count

    async def _participants(self, order_id: str) -> list[dict]:
        """The joins of a drawn gift that its frozen list holds. A timed join recorded after the
        freeze is left out of the draw and its record taken back (lottery/admission.py), but
        maybe only after this reads the joins: its member was told the gift had opened, and
        gets no result."""
        listed = await proofs.participants(self.db, order_id)
        read = [j async for j in self._joins(order_id)]
        if listed is None:  # no proof (none is made for a gift without a draw): everyone who joined
            return read
        return [j for j in read if fairness.pseudonym(order_id, j["member_id"]) in listed]

    async def _joins(self, order_id: str):
        async with aclosing(joins.in_batches(self.db, order_id, READ_BATCH)) as batches:
            async for batch in batches:
                for join in batch:
                    yield join

    async def expand_pages(self, room: int = 100_000, claim_for: tuple[str, datetime] | None = None) -> list[dict]:
        """Entries for the participants of pages nobody holds, a page at a time while fewer than
        `room` were made; returns the entries this call made. With `claim_for` (an owner and a
        lease's end), the ones to send are made claimed for that owner, this attempt counted,
        so the caller sends them at once (notify/worker.py): an entry is inserted once however
        many processes expand its page, so whoever inserted it holds it."""
        made: list[dict] = []
        for record in await outbox.free(self.db, "participants", clock.utcnow(), max(1, -(-room // self.page_size))):
            if len(made) >= room:
                break
            now = clock.utcnow()
            if not await outbox.take(self.db, record, self.owner, now + self.lease):
                continue
            with logs.bound(record.get("request_id")):  # the request that opened the gift
                entries = await self._participant_entries(record)
                if claim_for is not None:
                    owner, until = claim_for
                    for entry in entries:
                        if entry["status"] == "pending":
                            entry.update(store.held(owner, until), attempts=1)
                made += await store.insert(self.db, entries)
                await outbox.finish(self.db, record["_id"], self.owner, clock.utcnow(), {})
        return made

    async def _participant_entries(self, page: dict) -> list[dict]:
        """`gift_won` or `gift_lost` for each member of this page (a winner's page entry names
        the item: the draw's list of winners decided it when the page was written)."""
        openids = await members.openids(self.db, [m["member_id"] for m in page["members"]])
        now = clock.utcnow()
        entries = []
        for member in page["members"]:
            won = "item" in member
            kind = "gift_won" if won else "gift_lost"
            values = {**page["values"], "result": "恭喜中奖" if won else "未中奖", "item": member.get("item", "")}
            template_id = self.template_ids.get(kind, "")
            entries.append(new_entry(page["order_id"], member["member_id"], kind,
                                     openids.get(member["member_id"], ""), template_id,
                                     template_id in member["subscribed"], values, now))
        return entries

    async def for_order(self, order_id: str, status: str | None = None, limit: int = 200) -> dict:
        """Support's view of one gift's notifications: counts by status and the entries."""
        check_identifier(order_id)
        if status is not None and status not in store.STATUSES:
            raise InvalidInput(f"status 必须是 {'、'.join(store.STATUSES)} 之一")
        entries = await store.for_order(self.db, order_id, status, limit)
        record = await outbox.get(self.db, "gift_opened", order_id)
        return {
            "order_id": order_id,
            "counts": await store.status_counts(self.db, order_id),
            "opened_record": None if record is None else {
                "status": record.get("status"), "created_at": clock.iso(record.get("created_at")),
                "done_at": clock.iso(record.get("done_at")),
                # Participants whose entries are still to be made, a page of them a record.
                "pages": await outbox.page_counts(self.db, order_id)},
            "entries": [{
                "id": e["_id"], "member_id": e["member_id"], "kind": e["kind"], "status": e["status"],
                "template_id": e.get("template_id", ""), "attempts": e.get("attempts", 0),
                "next_attempt_at": clock.iso(e.get("next_attempt_at")) if e["status"] == "pending" else None,
                "last_error": e.get("last_error"), "sent_at": clock.iso(e.get("sent_at")),
                "created_at": clock.iso(e.get("created_at")), "updated_at": clock.iso(e.get("updated_at")),
            } for e in entries],
        }
