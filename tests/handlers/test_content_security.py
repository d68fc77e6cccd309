"""Content security on the real stack, WeChat's msg_sec_check at the local stand-in: risky text
is refused, text for review is hidden (others see a neutral default), text accepted while
WeChat was down is hidden until the re-check worker passes it; and the optional user risk rank."""
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from lottery.gifts import DEFAULT_WISH
from notify.security import WeChatSecurity
from notify.tokens import AccessTokens
from services import text_settlers
from tests.shop import bought_gift, order, product, stock_of
from wechat.client import WeChatError

OPEN_AT = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
CHECK = "/wxa/msg_sec_check"


def wechat_down(fake, times: int = 1) -> None:
    """The next content checks find WeChat down (HTTP 503)."""
    fake.fail_next(CHECK, 503, times)


@pytest.fixture
def settings() -> dict:
    """The defaults; a test parametrizes the choices it is about."""
    return {}


@pytest.fixture
def app(build_app, payments, settings):
    return build_app(payments=payments, **settings)


async def public_wish(api, order_id: str) -> str:
    viewer = await api.login("viewer")
    status, answer = await api.gift(viewer, order_id)
    assert status == 200, answer
    return answer["gift"]["wish"]


def risk_refusals() -> float:
    return REGISTRY.get_sample_value("gift_lottery_risk_refusals_total") or 0


async def recheck(app) -> int:
    moderation = app.settings["moderation"]
    return await moderation.recheck(text_settlers(moderation.db, moderation, app.settings["profiles"]))


@pytest.mark.gen_test(timeout=60)
async def test_a_risky_wish_or_pass_phrase_is_refused_and_nothing_is_held(api, db, wechat_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    key = await api.login("buyer")
    for fields in ({"wish": "一起来赌博吧"}, {"pass_phrase": "违禁词"}):
        status, answer = await order(api, key, (coffee, 1), **fields)
        assert (status, answer["error"]["code"]) == (400, "content_risky"), fields
        assert answer["error"]["message"] == "内容含有违规信息，请修改后再试"
    assert await db.gifts.count_documents({}) == 0
    assert await stock_of(db, coffee) == (5, {})
    # WeChat was asked with version 2, the buyer's openid and the comment scene.
    assert [(c["version"], c["openid"], c["scene"]) for c in wechat_fake.checked] == [(2, "o_buyer", 2)] * 2


@pytest.mark.gen_test(timeout=60)
async def test_a_wish_for_review_is_hidden_from_others_and_its_buyer_still_sees_it(api, db, pay_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    key = await api.login("buyer")
    order_id = await bought_gift(api, pay_fake, key, (coffee, 1), wish="待审的祝福")
    assert await public_wish(api, order_id) == DEFAULT_WISH
    status, mine = await api.request("GET", f"/api/v1/orders/{order_id}", token=key)
    assert status == 200 and mine["wish"] == "待审的祝福"
    # A review verdict stays hidden: nothing waits for a re-check.
    assert await db.text_checks.count_documents({}) == 0


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"content_review_shown": True}])
async def test_with_review_shown_a_wish_for_review_is_shown(api, pay_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (coffee, 1), wish="待审的祝福")
    assert await public_wish(api, order_id) == "待审的祝福"


@pytest.mark.gen_test(timeout=60)
async def test_a_wish_written_while_wechat_is_down_is_hidden_until_the_recheck_passes_it(app, api, db, pay_fake,
                                                                                       wechat_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    key = await api.login("buyer")
    wechat_down(wechat_fake, 2)
    order_id = await bought_gift(api, pay_fake, key, (coffee, 1), wish="生日快乐")
    assert await public_wish(api, order_id) == DEFAULT_WISH
    assert await recheck(app) == 0  # still down: it waits, hidden
    check = await db.text_checks.find_one({"_id": f"wish:{order_id}"})
    assert check["status"] == "pending" and check["attempts"] == 1
    await db.text_checks.update_one({"_id": check["_id"]}, {"$set": {"next_attempt_at": check["created_at"]}})
    version = (await db.gifts.find_one({"_id": order_id}))["version"]
    assert await recheck(app) == 1
    assert await public_wish(api, order_id) == "生日快乐"
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["version"] == version + 1 and "wish_pending" not in gift  # watchers are told
    assert (await db.text_checks.find_one({"_id": check["_id"]}))["status"] == "done"


@pytest.mark.gen_test(timeout=60)
async def test_a_recheck_that_finds_the_text_risky_keeps_it_hidden(app, api, db, pay_fake, wechat_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    key = await api.login("buyer")
    wechat_down(wechat_fake)
    order_id = await bought_gift(api, pay_fake, key, (coffee, 1), wish="来赌博")
    assert await recheck(app) == 1
    assert await public_wish(api, order_id) == DEFAULT_WISH
    assert (await db.gifts.find_one({"_id": order_id}))["wish_check"] == "risky"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"content_unreachable": "refuse"}])
async def test_when_the_choice_is_to_refuse_an_order_written_while_wechat_is_down_is_refused(api, db, wechat_fake):
    coffee = await product(api, "咖啡券", 2800, 5)
    key = await api.login("buyer")
    wechat_down(wechat_fake)
    status, answer = await order(api, key, (coffee, 1), wish="生日快乐")
    assert (status, answer["error"]["code"]) == (502, "upstream_error")
    assert await db.gifts.count_documents({}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_nicknames_others_see_only_once_they_pass(app, api, db, wechat_fake):
    key = await api.login("sender")
    order_id = await api.create_gift(method="timed", open_at=OPEN_AT)

    async def shown_sender() -> str:
        return (await api.gift(await api.login("viewer"), order_id))[1]["gift"]["sender"]["name"]

    status, answer = await api.request("POST", "/api/v1/me/profile", {"nickname": "赌博大王"}, token=key)
    assert (status, answer["error"]["code"]) == (400, "content_risky")
    status, answer = await api.request("POST", "/api/v1/me/profile", {"nickname": "小明"}, token=key)
    assert status == 200 and answer["nickname"] == "小明" and await shown_sender() == "小明"
    # For review: its author sees it, others still see the last name that passed.
    status, answer = await api.request("POST", "/api/v1/me/profile", {"nickname": "待审小明"}, token=key)
    assert status == 200 and answer["nickname"] == "待审小明" and await shown_sender() == "小明"
    # WeChat down: hidden until the re-check, then on the member's gifts too.
    wechat_down(wechat_fake)
    status, answer = await api.request("POST", "/api/v1/me/profile", {"nickname": "小红"}, token=key)
    assert status == 200 and answer["nickname"] == "小红" and await shown_sender() == "小明"
    assert await recheck(app) == 1
    assert await shown_sender() == "小红"
    assert [c["scene"] for c in wechat_fake.checked] == [1, 1, 1, 1]  # the profile scene


@pytest.mark.gen_test
async def test_the_stand_in_answers_as_wechat_does_for_a_wrong_openid_and_a_bad_token(db, wechat):
    security = WeChatSecurity(wechat, AccessTokens(db, wechat))
    token = await security.tokens.get()
    with pytest.raises(WeChatError) as wrong:
        await wechat.msg_sec_check(token, "not-an-openid-of-ours", 2, "你好")
    assert wrong.value.errcode == 40003
    with pytest.raises(WeChatError) as stale:
        await wechat.msg_sec_check("token-from-elsewhere", "o_member", 2, "你好")
    assert stale.value.errcode == 40001
    assert await security.check_text("o_member", 2, "你好") == "pass"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"risk_rank_check": True, "risk_rank_refuse_at": 3}])
async def test_with_the_risk_rank_on_risky_members_are_refused_once_asked_and_counted(api, db, wechat_fake):
    order_ids = [await api.create_gift(method="timed", open_at=OPEN_AT) for _ in range(2)]
    bot, person = await api.login("bot"), await api.login("person")
    wechat_fake.risk_ranks.update({"o_bot": 4, "o_person": 2})
    refusals = risk_refusals()
    for order_id in order_ids:
        status, answer = await api.join(bot, order_id)
        assert (status, answer["error"]["code"]) == (403, "risk_refused")
        status, answer = await api.join(person, order_id)
        assert status == 200, answer
    assert risk_refusals() == refusals + 2
    # Asked once per member: the answer is kept for a day.
    asked = [c["body"] for c in wechat_fake.calls["/wxa/getuserriskrank"]]
    assert len(asked) == 2 and all(b'"scene": 1' in body for body in asked)
    assert await db.joins.count_documents({"member_id": {"$exists": True}}) == 2
