"""Gifts for domain tests: specs with sensible defaults, joiners, and due times."""
from datetime import timedelta

from lottery import clock
from lottery.gifts import GiftSpec, Gifts, Item


def spec(method: str = "timed", items: int | list[str] = 3, sender: str = "o_sender", **fields) -> GiftSpec:
    """A valid gift: `items` names (or how many, `item0`...); a timed gift opens in an hour."""
    names = [f"item{i}" for i in range(items)] if isinstance(items, int) else items
    if method == "timed":
        fields.setdefault("open_at", clock.utcnow() + timedelta(hours=1))
    return GiftSpec(sender, method, [Item(name) for name in names], **fields)


async def make_gift(gifts: Gifts, method: str = "timed", joiners: int = 0, items: int | list[str] = 3,
                    prefix: str = "o_joiner", **fields) -> dict:
    """A gift and `joiners` members (openids `{prefix}{i}`) who joined it. An open-when-full
    gift gets room for them all unless `open_number` says otherwise."""
    if method == "full":
        fields.setdefault("open_number", joiners + 100)
    gift = await gifts.create(spec(method, items, **fields))
    for i in range(joiners):
        await gifts.join(gift["_id"], await gifts.accounts.ensure_member(f"{prefix}{i}"))
    return gift


async def make_due(db, order_id: str) -> None:
    """Bring the gift's open time (or deadline) to now."""
    now = clock.utcnow()
    await db.gifts.update_one({"_id": order_id}, {"$set": {"open_at": now, "deadline_at": now, "due_at": now}})
