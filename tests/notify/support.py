"""Shared by the notification tests: a template configuration, gifts opened by the real draw,
and waiting for the outbox to settle."""
import json

from lottery.accounts import Accounts
from lottery.draw import Draws
from tests import beacons
from lottery.gifts import Gifts
from lottery.storage import notifications as store
from lottery.storage import outbox
from tests.gifts import make_due, spec
from tests.waiting import until

TEMPLATE_IDS = {"gift_received": "tpl_received", "gift_won": "tpl_won", "gift_lost": "tpl_lost",
                "gift_summary": "tpl_summary"}
CONFIG = {
    "miniprogram_state": "formal", "lang": "zh_CN",
    "templates": {
        "gift_received": {"template_id": "tpl_received", "page": "pages/gift/result?order_id={order_id}",
                          "data": {"thing1": "{item}", "name2": "{sender}", "thing3": "{wish}"}},
        "gift_won": {"template_id": "tpl_won",
                     "data": {"thing1": "{item}", "phrase2": "{result}", "time3": "{opened_at}"}},
        "gift_lost": {"template_id": "tpl_lost", "data": {"thing1": "{wish}", "phrase2": "{result}"}},
        "gift_summary": {"template_id": "tpl_summary",
                         "data": {"thing1": "{wish}", "number2": "{participant_count}",
                                  "number3": "{winner_count}"}},
    },
}
CONFIG_JSON = json.dumps(CONFIG)


async def timed_gift(db, joiners: int, items: int = 3, subscribed_every: int = 1,
                     prefix: str = "j", wish: str = "新年快乐") -> tuple[str, list[str]]:
    """A timed gift with `joiners` joins (every `subscribed_every`-th accepted both result
    templates), made due now. Returns the order id and the subscribers' openids."""
    gifts = Gifts(db, Accounts(db, None), beacons.receipt_key())
    gift = await gifts.create(spec("timed", [f"奖品{i}" for i in range(items)], sender=f"o_{prefix}_sender", wish=wish))
    subscribers = []
    for i in range(joiners):
        openid = f"o_{prefix}{i}"
        member_id = await gifts.accounts.ensure_member(openid)
        accepted = i % subscribed_every == 0
        await gifts.join(gift["_id"], member_id, subscribed=["tpl_won", "tpl_lost"] if accepted else [])
        if accepted:
            subscribers.append(openid)
    await make_due(db, gift["_id"])
    return gift["_id"], subscribers


async def open_gift(db, order_id: str) -> None:
    """Open it with the real draw."""
    draws = Draws(db, beacons.beacon(), beacons.receipt_key())
    assert await draws.open([order_id])
    await draws.idle()


async def settled(db, order_id: str, timeout: float = 60.0) -> dict[str, int]:
    """Wait until the gift's record and its participant pages are expanded and no entry is
    pending or sending."""
    async def counts_when_settled() -> dict[str, int] | None:
        record = await db.outbox.find_one({"_id": f"opened:{order_id}"})
        pages = await outbox.page_counts(db, order_id)
        counts = await store.status_counts(db, order_id)
        done = record and record["status"] == "done" and set(pages) <= {"done"} \
            and counts["pending"] == 0 and counts["sending"] == 0
        return counts if done else None
    return await until(counts_when_settled, timeout=timeout, interval=0.1)
