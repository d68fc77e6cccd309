"""The seed mini-program's routes answer exactly what join.js reads."""
import re
from datetime import datetime, timedelta, timezone

import pytest


@pytest.mark.gen_test
async def test_login_returns_a_long_random_login_key(api, wechat_fake):
    key = await api.login("alice")
    assert len(key) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", key)
    assert key != await api.login("alice")
    call = wechat_fake.calls["/sns/jscode2session"][0]["query"]
    assert call["js_code"] == "alice" and call["grant_type"] == "authorization_code"


@pytest.mark.gen_test
@pytest.mark.parametrize("code, reason", [("bad", "40029"), ("busy", "-1"), ("http500", "HTTP 500")])
async def test_login_reports_wechat_errors_as_error(api, code, reason):
    answer = await api.legacy("/api/member/code/login", {"code": code})
    assert answer["code"] == "error" and reason in answer["message"]


@pytest.mark.gen_test(timeout=30)
async def test_login_times_out_cleanly_when_wechat_is_slow(api, wechat_fake, wechat):
    wechat.timeout = 1.0
    wechat_fake.slow_seconds = 4  # the client under test gives up after 1 s
    answer = await api.legacy("/api/member/code/login", {"code": "slow"})
    assert answer["code"] == "error"


@pytest.mark.gen_test
async def test_check_has_join_success_carries_sender_method_and_wish(api):
    open_at = datetime.now(timezone.utc) + timedelta(hours=2)
    order_id = await api.create_gift(method="timed", open_at=open_at.isoformat(), wish="一起发财")
    key = await api.login("bob")
    answer = await api.check(key, order_id)
    assert answer["code"] == "success"
    data = answer["data"]
    assert set(data["member_data"]) >= {"name", "avatar"}
    assert data["methons_data"]["get_method"] == "定时开奖"
    shanghai = open_at.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    assert data["methons_data"]["opentime"] == shanghai
    assert data["order_data"]["memo"] == "一起发财"


@pytest.mark.gen_test
async def test_check_has_join_says_already_joined_then_full(api, db):
    order_id = await api.create_gift(method="full", open_number=2, items=[{"name": "A"}])
    alice, bob, carol = [await api.login(n) for n in ("alice", "bob", "carol")]
    assert (await api.join_gift(alice, order_id))["code"] == "success"
    assert await api.check(alice, order_id) == {"code": "error", "message": "你已经参与过了", "data": None}
    assert (await api.join_gift(bob, order_id))["code"] == "success"
    # Full and not yet drawn (the draw starts at once; hold the gift in that state to look at it).
    await db.gifts.update_one({"_id": order_id}, {"$set": {"status": "ready"}})
    answer = await api.check(carol, order_id)
    assert answer["code"] == "error" and answer["message"] == "参与人数已满"


@pytest.mark.gen_test
async def test_full_means_open_number_joins_not_one_more(api):
    """The seed let open_number + 1 people in (`join_num > open_number`)."""
    order_id = await api.create_gift(method="full", open_number=1)
    first, second = await api.login("first"), await api.login("second")
    assert (await api.check(first, order_id))["code"] == "success"
    assert (await api.join_gift(first, order_id))["code"] == "success"
    assert (await api.check(second, order_id))["code"] in ("error", "suc")  # full, or already opened
    answer = await api.join_gift(second, order_id)
    assert answer["code"] == "error" and answer["message"] == "参与人数已满"


@pytest.mark.gen_test
async def test_direct_gift_join_answers_suc_with_the_item_then_opened(api):
    order_id = await api.create_gift(method="direct", items=[{"name": "红包"}])
    winner, late = await api.login("winner"), await api.login("late")
    answer = await api.join_gift(winner, order_id)
    assert answer["code"] == "suc" and answer["data"]["item"]["name"] == "红包"
    assert (await api.check(late, order_id))["code"] == "suc"
    answer = await api.join_gift(late, order_id)
    assert answer["code"] == "error" and answer["message"] == "没有礼品可以领取"


@pytest.mark.gen_test
async def test_sender_cannot_join_own_gift(api):
    order_id = await api.create_gift(method="direct", sender_openid="o_sam")
    sam = await api.login("sam")
    assert (await api.check(sam, order_id))["code"] == "error"
    answer = await api.join_gift(sam, order_id)
    assert answer["code"] == "error" and "自己" in answer["message"]


@pytest.mark.gen_test
async def test_expired_or_unknown_login_key_is_refused(api):
    order_id = await api.create_gift(method="direct")
    for call in (api.check, api.join_gift):
        answer = await call("not-a-real-key", order_id)
        assert answer == {"code": "error", "message": "login_key已过期", "data": None}


@pytest.mark.gen_test
async def test_expired_login_key_is_refused(api, db):
    key = await api.login("old")
    await db.login_keys.update_many({}, {"$set": {"expires_at": datetime(2020, 1, 1, tzinfo=timezone.utc)}})
    order_id = await api.create_gift(method="direct")
    assert (await api.check(key, order_id))["message"] == "login_key已过期"


@pytest.mark.gen_test
async def test_form_id_is_kept_on_the_join(api, db):
    order_id = await api.create_gift(method="full", open_number=5)
    key = await api.login("dave")
    await api.join_gift(key, order_id, form_id="form-xyz")
    join = await db.joins.find_one({"order_id": order_id})
    assert join["form_id"] == "form-xyz"


@pytest.mark.gen_test
async def test_login_keys_are_stored_only_as_digests(api, db):
    key = await api.login("erin")
    stored = await db.login_keys.find_one({})
    assert key not in str(stored) and len(stored["_id"]) == 64
    member = await db.members.find_one({"openid": "o_erin"})
    assert member["session_key"]  # kept server-side for profile decryption
