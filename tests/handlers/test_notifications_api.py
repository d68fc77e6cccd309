"""GET /api/admin/notifications: each entry's state, for support."""
import pytest

from lottery.notifications import Notifications
from tests.api import ADMIN_TOKEN
from tests.notify.support import TEMPLATE_IDS, open_gift, timed_gift


@pytest.mark.gen_test(timeout=30)
async def test_support_sees_every_entry_of_a_gift(api, db):
    order_id, subscribers = await timed_gift(db, joiners=4, items=1, subscribed_every=2)
    await open_gift(db, order_id)
    notifications = Notifications(db, TEMPLATE_IDS)
    assert await notifications.expand_opened_gifts() == 1
    assert len(await notifications.expand_pages()) == 4
    status, answer = await api.request("GET", f"/api/admin/notifications?order_id={order_id}", token=ADMIN_TOKEN)
    assert status == 200
    assert answer["counts"] == {"pending": 2, "sending": 0, "sent": 0, "not_subscribed": 3, "failed": 0}
    assert answer["opened_record"]["status"] == "done" and len(answer["entries"]) == 5
    assert answer["opened_record"]["pages"] == {"done": 2}  # the winner's page and the others'
    entry = next(e for e in answer["entries"] if e["status"] == "pending")
    assert set(entry) >= {"id", "member_id", "kind", "status", "attempts", "next_attempt_at", "last_error"}
    assert "touser" not in entry and "values" not in entry  # no openids in support's view
    status, answer = await api.request(
        "GET", f"/api/admin/notifications?order_id={order_id}&status=not_subscribed&limit=2", token=ADMIN_TOKEN)
    assert status == 200 and [e["status"] for e in answer["entries"]] == ["not_subscribed"] * 2


@pytest.mark.parametrize("query, status", [
    ("", 400), ("?order_id=../x", 400), ("?order_id=abc&status=lost", 400),
    ("?order_id=abc&limit=0", 400), ("?order_id=abc&limit=many", 400),
])
@pytest.mark.gen_test
async def test_bad_queries_get_a_clear_400(api, query, status):
    got, answer = await api.request("GET", "/api/admin/notifications" + query, token=ADMIN_TOKEN)
    assert got == status and answer["error"]["message"]


@pytest.mark.gen_test
async def test_the_admin_token_is_required(api):
    status, _ = await api.request("GET", "/api/admin/notifications?order_id=abc", token="wrong")
    assert status == 403
