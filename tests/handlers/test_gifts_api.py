"""The v1 gift API: bearer keys, real status codes, one member state."""
from datetime import datetime, timedelta, timezone

import pytest


@pytest.mark.gen_test
async def test_gift_view_has_public_fields_and_no_secrets(api):
    order_id = await api.create_gift(method="full", open_number=3, items=[{"name": "A"}, {"name": "B"}])
    key = await api.login("viewer")
    status, answer = await api.gift(key, order_id)
    assert status == 200
    gift = answer["gift"]
    for field in ("order_id", "sender", "method", "open_number", "open_at", "wish", "status",
                  "joined_count", "items_total", "items_left", "version", "seed_commitment"):
        assert field in gift
    assert gift["method"] == "full" and gift["items_total"] == 2 and gift["status"] == "open"
    assert "seed" not in gift and "claimants" not in gift and "sender_id" not in gift
    assert answer["me"] == {"state": "can_join"}


@pytest.mark.gen_test
async def test_version_grows_on_every_join(api):
    order_id = await api.create_gift(method="full", open_number=3)
    a, b = await api.login("a"), await api.login("b")
    v0 = (await api.gift(a, order_id))[1]["gift"]["version"]
    await api.join(a, order_id)
    v1 = (await api.gift(a, order_id))[1]["gift"]["version"]
    await api.join(b, order_id)
    v2 = (await api.gift(a, order_id))[1]["gift"]["version"]
    assert v0 < v1 < v2


@pytest.mark.gen_test
async def test_member_states_through_a_full_gift(api):
    order_id = await api.create_gift(method="full", open_number=1, sender_openid="o_owner")
    owner, joiner, other = await api.login("owner"), await api.login("joiner"), await api.login("other")
    assert (await api.gift(owner, order_id))[1]["me"]["state"] == "own_gift"
    status, answer = await api.join(joiner, order_id)
    assert status == 200 and answer["me"]["state"] == "joined_waiting"
    assert (await api.gift(joiner, order_id))[1]["me"]["state"] == "joined_waiting"
    # The last seat opens the gift at once: "full" while it draws, "closed" once drawn.
    assert (await api.gift(other, order_id))[1]["me"]["state"] in ("full", "closed")
    gift = (await api.gift(other, order_id))[1]["gift"]
    assert gift["status"] in ("ready", "drawing", "finished") and gift["joined_count"] == 1


@pytest.mark.gen_test
async def test_direct_gift_winner_sees_item(api):
    order_id = await api.create_gift(method="direct", items=[{"name": "A"}, {"name": "B"}])
    key = await api.login("w")
    status, answer = await api.join(key, order_id)
    assert status == 200 and answer["me"] == {"state": "won", "item": {"name": "A", "image": ""}}
    me = (await api.gift(key, order_id))[1]["me"]
    assert me["state"] == "won" and me["item"]["name"] == "A"


@pytest.mark.gen_test
async def test_join_status_codes(api):
    order_id = await api.create_gift(method="full", open_number=1)
    a, b = await api.login("a"), await api.login("b")
    assert (await api.join(a, order_id))[0] == 200
    status, answer = await api.join(a, order_id)
    assert status == 409 and answer["error"]["code"] == "already_joined"
    status, answer = await api.join(b, order_id)
    assert status == 409 and answer["error"]["code"] == "full"
    assert (await api.join(b, "ffffffffffffffffffffffff"))[0] == 404
    assert (await api.join("bogus-key", order_id))[0] == 401
    assert (await api.request("GET", f"/api/v1/gifts/{order_id}"))[0] == 401


@pytest.mark.gen_test
async def test_timed_gift_refuses_joins_at_open_time(api, db):
    open_at = datetime.now(timezone.utc) + timedelta(hours=1)
    order_id = await api.create_gift(method="timed", open_at=open_at.isoformat())
    early, late = await api.login("early"), await api.login("late")
    assert (await api.join(early, order_id))[0] == 200
    # Move the opening time to this very instant: joins at or after it are refused.
    await db.gifts.update_one({"_id": order_id}, {"$set": {"open_at": datetime.now(timezone.utc)}})
    status, answer = await api.join(late, order_id)
    assert status == 410 and answer["error"]["code"] == "closed"
    assert (await api.gift(late, order_id))[1]["me"]["state"] == "closed"
    legacy = await api.join_gift(late, order_id)
    assert legacy["code"] == "error" and legacy["message"] == "参与时间已过"


@pytest.mark.gen_test
async def test_admin_routes_need_the_token(api):
    body = {"sender_openid": "o_x", "method": "direct", "items": [{"name": "A"}]}
    assert (await api.request("POST", "/api/admin/gifts", body))[0] == 403
    assert (await api.request("POST", "/api/admin/gifts", body, token="wrong"))[0] == 403


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    {"method": "direct", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "lucky", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "direct", "items": []},
    {"sender_openid": "o", "method": "direct", "items": [{"name": {"$gt": ""}}]},
    {"sender_openid": "o", "method": "full", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "full", "open_number": 0, "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "timed", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "timed", "open_at": "2001-01-01T00:00:00Z", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "timed", "open_at": "tomorrow", "items": [{"name": "A"}]},
    {"sender_openid": "o", "method": "direct", "items": [{"name": "A"}], "sender_subscribed": {"$ne": None}},
    {"sender_openid": "o", "method": "direct", "items": [{"name": "A"}], "sender_subscribed": [1]},
])
async def test_admin_create_refuses_bad_gifts(api, body):
    status, answer = await api.request("POST", "/api/admin/gifts", body, token=api.admin_token)
    assert status == 400 and answer["error"]["message"]


@pytest.mark.gen_test
async def test_admin_create_keeps_the_templates_the_sender_accepted(api, db):
    body = {"sender_openid": "o_x", "method": "direct", "items": [{"name": "A"}],
            "sender_subscribed": ["tpl_summary"]}
    status, answer = await api.request("POST", "/api/admin/gifts", body, token=api.admin_token)
    assert status == 201
    assert (await db.gifts.find_one({"_id": answer["order_id"]}))["sender_subscribed"] == ["tpl_summary"]


@pytest.mark.gen_test
async def test_health_answers_when_the_database_does(api):
    assert await api.request("GET", "/healthz") == (200, {"status": "ok", "database": "ok"})
