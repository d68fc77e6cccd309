"""Operations API, present only when ADMIN_TOKEN is set: creating gifts and support's view of a
gift's notifications."""
from handlers import params
from handlers.base import BaseHandler
from lottery import clock
from lottery.errors import InvalidInput
from lottery.gifts import DEFAULT_WISH, MAX_ITEMS, GiftSpec, Item

MAX_ENTRIES = 1000


class AdminHandler(BaseHandler):
    """Admin routes answer to the admin token, never to a member's login key."""

    async def prepare(self) -> None:
        self.current_user = None
        self.require_admin()


def gift_spec(body: dict) -> GiftSpec:
    """A new gift from an admin request body (types here; the rules are the domain's)."""
    open_at = params.text(body, "open_at", 40, required=False)
    try:
        opens = clock.parse_time(open_at) if open_at else None
    except ValueError as exc:
        raise InvalidInput("open_at 必须是 ISO 8601 时间") from exc
    return GiftSpec(
        sender_openid=params.text(body, "sender_openid", 128),
        method=params.text(body, "method", 16),
        items=[Item(params.text(entry, "name", 50), params.text(entry, "image", 500, required=False))
               for entry in params.objects(body, "items", MAX_ITEMS)],
        open_number=params.integer(body, "open_number", 0, 2**31, required=False),
        open_at=opens,
        wish=params.text(body, "wish", 100, required=False, default=DEFAULT_WISH),
        deadline_hours=params.integer(body, "deadline_hours", 0, 2**31, required=False),
        sender_subscribed=params.text_list(body, "sender_subscribed", 10, 128))


class AdminGiftsHandler(AdminHandler):
    async def post(self) -> None:
        """Create a paid gift: `{sender_openid, method, items, open_number?, open_at?, wish?,
        deadline_hours?, sender_subscribed?}` -> 201 `{order_id, seed_commitment}`."""
        gift = await self.gifts.create(gift_spec(self.json_body()))
        self.reply({"order_id": gift["_id"], "seed_commitment": gift["seed_commitment"]}, status=201)


class AdminNotificationsHandler(AdminHandler):
    async def get(self) -> None:
        """`?order_id=&status=&limit=` -> `{order_id, counts, opened_record, entries}`: each
        entry's kind, status, attempts, next attempt and last error."""
        order_id = params.identifier({"order_id": self.get_query_argument("order_id", "")}, "order_id")
        status = self.get_query_argument("status", "") or None
        limit = params.query_integer(self.get_query_argument("limit", "200"), "limit", 1, MAX_ENTRIES)
        self.reply(await self.notifications.for_order(order_id, status, limit))


default_handlers = [
    (r"/api/admin/gifts", AdminGiftsHandler),
    (r"/api/admin/notifications", AdminNotificationsHandler),
]
