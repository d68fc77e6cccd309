"""Support's view of a gift's notifications (admin token)."""
from lottery import validate
from lottery.notifications import Notifications

from handlers.base import BaseHandler

MAX_ENTRIES = 1000


class AdminNotificationsHandler(BaseHandler):
    async def get(self) -> None:
        """`?order_id=&status=&limit=` -> `{order_id, counts, opened_record, entries}`: each
        entry's kind, status, attempts, next attempt and last error."""
        self.require_admin()
        order_id = validate.identifier({"order_id": self.get_query_argument("order_id", "")}, "order_id")
        status = self.get_query_argument("status", "") or None
        limit = validate.integer({"limit": _int_or_text(self.get_query_argument("limit", "200"))},
                                 "limit", 1, MAX_ENTRIES)
        self.reply(await Notifications(self.settings["db"]).for_order(order_id, status, limit))


def _int_or_text(value: str) -> int | str:
    """A query argument as the integer it spells, or as is (for a clear error)."""
    return int(value) if value.strip().lstrip("-").isdigit() else value


default_handlers = [
    (r"/api/admin/notifications", AdminNotificationsHandler),
]
