"""Entry conditions on the real stack: a pass phrase (口令) with its guessing limit, and gifts
bound to one WeChat group (wx.getGroupEnterInfo's data, encrypted as WeChat encrypts it)."""
import asyncio
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from fakes.wechat import group_enter_info
from lottery.entry import GUESS_LIMIT, normalise_phrase
from tests.handlers.test_join_races import logins

PHRASE = "芝麻开门 ABC"
OPEN_AT = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()


async def phrase_gift(api, method: str = "timed", **fields) -> str:
    return await api.create_gift(method=method, open_at=OPEN_AT, pass_phrase=PHRASE, **fields)


def test_phrases_compare_after_width_case_and_space_normalisation():
    assert normalise_phrase(" 芝麻开门　ＡＢＣ ") == normalise_phrase(PHRASE) == "芝麻开门 abc"
    assert normalise_phrase("芝麻开门abc") != normalise_phrase(PHRASE)  # inner spaces count


@pytest.mark.gen_test(timeout=180)
async def test_200_racing_members_half_with_a_wrong_phrase_exactly_the_right_ones_join_once(api, db):
    order_id = await phrase_gift(api)
    keys = await logins(api, "phrase", 200)
    right = {i for i in range(200) if i % 2 == 0}
    # Right phrases as people type them: full-width letters, another case, spaces around.
    spellings = [PHRASE, " 芝麻开门 ａｂｃ", "芝麻开门 Abc  "]
    bodies = [{"login_key": k, "order_id": order_id,
               "pass_phrase": spellings[i % 3] if i in right else f"芝麻关门 {i}"} for i, k in enumerate(keys)]
    taps = list(range(200)) + list(range(50))  # the first 50 members tap twice
    answers = await api.burst("/api/sharagift/JoinGift", None, 0, bodies=[bodies[i] for i in taps])
    assert all(status == 200 for status, _ in answers)
    joins = Counter(i for i, (_, answer) in zip(taps, answers) if answer["code"] == "success")
    assert set(joins) == right and set(joins.values()) == {1}
    assert {answer["message"] for i, (_, answer) in zip(taps, answers) if i not in right} == {"口令不正确"}
    assert {answer["message"] for i, (_, answer) in zip(taps, answers)
            if i in right and answer["code"] != "success"} == {"你已经参与过了"}
    assert await db.joins.count_documents({"order_id": order_id}) == 100
    assert (await db.gifts.find_one({"_id": order_id}))["joined_count"] == 100


@pytest.mark.gen_test(timeout=120)
async def test_concurrent_wrong_guesses_are_capped_at_the_limit_then_the_member_is_refused(api, db):
    order_id = await phrase_gift(api)
    guesser, other = await api.login("guesser"), await api.login("bystander")
    answers = await api.burst("/api/sharagift/JoinGift", {"login_key": guesser, "order_id": order_id,
                                                          "pass_phrase": "猜一猜"}, 40)
    assert Counter(answer["message"] for _, answer in answers) == {"口令不正确": GUESS_LIMIT,
                                                                  "口令错误次数过多，请稍后再试": 40 - GUESS_LIMIT}
    # Locked out: even the right phrase is refused now, and nothing was joined.
    status, answer = await api.join(guesser, order_id, {"pass_phrase": PHRASE})
    assert (status, answer["error"]["code"]) == (429, "too_many_guesses")
    assert await db.joins.count_documents({"order_id": order_id}) == 0
    # Another member is not affected.
    status, answer = await api.join(other, order_id, {"pass_phrase": PHRASE})
    assert status == 200 and answer["me"]["state"] == "joined_waiting"


@pytest.mark.gen_test
async def test_a_right_guess_does_not_count_against_the_limit(api):
    order_ids = [await phrase_gift(api) for _ in range(GUESS_LIMIT + 2)]
    key = await api.login("honest")
    for order_id in order_ids:  # more right phrases than the limit, one gift each
        status, _ = await api.join(key, order_id, {"pass_phrase": PHRASE})
        assert status == 200


@pytest.mark.gen_test
async def test_the_phrase_is_never_in_the_public_view_nor_in_the_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    order_id = await phrase_gift(api)
    key = await api.login("reader")
    status, view = await api.gift(key, order_id)
    assert status == 200 and view["gift"]["entry"] == {"pass_phrase": True, "group_only": False,
                                                       "group_bound": False}
    check = await api.check(key, order_id)
    assert check["code"] == "success" and check["data"]["entry"]["pass_phrase"] is True
    status, answer = await api.join(key, order_id, {})
    assert (status, answer["error"]["code"]) == (400, "pass_phrase_required")
    await api.join(key, order_id, {"pass_phrase": "秘密猜测词"})
    await api.join(key, order_id, {"pass_phrase": PHRASE})
    text = str(view) + str(check) + caplog.text
    assert "芝麻开门" not in text and "秘密猜测词" not in text and normalise_phrase(PHRASE) not in text


@pytest.mark.gen_test
async def test_a_gift_without_conditions_answers_the_seed_client_as_before(api):
    order_id = await api.create_gift(method="timed", open_at=OPEN_AT)
    key = await api.login("seedclient")
    check = await api.check(key, order_id)
    assert check["code"] == "success" and "entry" not in check["data"]
    assert (await api.join_gift(key, order_id))["code"] == "success"


async def group_join(api, key: str, code: str, order_id: str, opengid: str | None, **options) -> tuple[int, dict]:
    return await api.join(key, order_id, group_enter_info(code, opengid, **options))


@pytest.mark.gen_test(timeout=60)
async def test_a_group_gift_is_joined_from_inside_its_group_only(api, db):
    order_id = await api.create_gift(method="timed", open_at=OPEN_AT, group_only=True)
    sender = await api.login("sender")  # the admin gift's sender is o_sender
    member, outsider, forwarded, late = [await api.login(c) for c in ("insider", "outsider", "forwarded", "late")]

    # Before the sender opens it in the group, nobody can join it.
    status, answer = await group_join(api, member, "insider", order_id, "G_family")
    assert (status, answer["error"]["code"]) == (409, "group_not_bound")
    # Only the sender binds it, once.
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/group",
                                       group_enter_info("insider", "G_other"), token=member)
    assert status == 400
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/group",
                                       group_enter_info("sender", "G_family"), token=sender)
    assert status == 200 and answer["entry"] == {"pass_phrase": False, "group_only": True, "group_bound": True}
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/group",
                                       group_enter_info("sender", "G_other"), token=sender)
    assert (status, answer["error"]["code"]) == (409, "group_already_bound")

    status, answer = await group_join(api, member, "insider", order_id, "G_family")
    assert status == 200 and answer["me"]["state"] == "joined_waiting"
    refusals = {
        "another group": await group_join(api, outsider, "outsider", order_id, "G_other"),
        "a one-to-one chat (left the group)": await group_join(api, forwarded, "forwarded", order_id, None),
        "data an hour and more old": await group_join(api, late, "late", order_id, "G_family", age_seconds=3700),
        "another mini-program's data": await group_join(api, late, "late", order_id, "G_family", appid="wx_other"),
        "another member's data": await group_join(api, late, "insider", order_id, "G_family"),
        "no data": await api.join(late, order_id, {}),
    }
    assert {name: (status, answer["error"]["code"]) for name, (status, answer) in refusals.items()} == {
        "another group": (403, "not_in_group"),
        "a one-to-one chat (left the group)": (403, "not_in_group"),
        "data an hour and more old": (400, "group_data_stale"),
        "another mini-program's data": (400, "wrong_appid"),
        "another member's data": (400, "decryption_failed"),
        "no data": (400, "group_data_required"),
    }
    # A member without a session key (signed in some other way) cannot prove a group.
    await db.members.update_one({"openid": "o_late"}, {"$unset": {"session_key": ""}})
    status, answer = await group_join(api, late, "late", order_id, "G_family")
    assert (status, answer["error"]["code"]) == (401, "no_session_key")
    assert await db.joins.count_documents({"order_id": order_id}) == 1
    view = (await api.gift(member, order_id))[1]["gift"]
    assert "G_family" not in str(view)


@pytest.mark.gen_test(timeout=60)
async def test_racing_joins_from_inside_and_outside_the_group_admit_exactly_the_insiders(api, db):
    order_id = await api.create_gift(method="full", open_number=100, group_only=True)
    sender = await api.login("sender")
    await api.request("POST", f"/api/v1/gifts/{order_id}/group", group_enter_info("sender", "G_team"), token=sender)
    keys = await logins(api, "grp", 40)
    bodies = [{"login_key": k, "order_id": order_id,
               **group_enter_info(f"grp{i}", "G_team" if i < 20 else "G_elsewhere")} for i, k in enumerate(keys)]
    answers = await api.burst("/api/sharagift/JoinGift", None, 0, bodies=bodies)
    codes = Counter((i < 20, answer["code"]) for i, (_, answer) in enumerate(answers))
    assert codes == {(True, "success"): 20, (False, "error"): 20}
    assert await db.joins.count_documents({"order_id": order_id}) == 20
    await asyncio.sleep(0)
