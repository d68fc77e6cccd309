"""Profile routes over HTTP: the seed's getUserInfo and the v1 fill-in."""
import pytest

from fakes.wechat import APPID, session_key_for
from tests.wechat.support import encrypt_user_data, user_info

IV = "AAECAwQFBgcICQoLDA0ODw=="


async def user_info_request(api, code: str, info: dict, **override) -> dict:
    login_key = await api.login(code)
    body = {"login_key": login_key, "iv": IV,
            "encryptedData": encrypt_user_data(session_key_for(code), IV, info), **override}
    return await api.legacy("/api/member/code/getUserInfo", body)


@pytest.mark.gen_test
async def test_get_user_info_stores_the_name_the_join_page_shows(api):
    order_id = await api.create_gift(method="direct", sender_openid="o_alice")
    answer = await user_info_request(api, "alice", user_info(nickName="爱丽丝"))
    assert answer["code"] == "success"
    assert answer["data"] == {"name": "爱丽丝", "avatar": "https://thirdwx.qlogo.cn/a.png"}
    visitor = await api.login("bob")
    check = await api.check(visitor, order_id)
    assert check["data"]["member_data"] == {"name": "爱丽丝", "avatar": "https://thirdwx.qlogo.cn/a.png"}


@pytest.mark.parametrize("case, message", [
    ("wrong_appid", "用户数据不属于本小程序"),
    ("tampered", "用户数据解密失败，请重新授权"),
    ("missing_iv", "缺少参数"),
    ("bad_key", "login_key已过期"),
    ("operator", "参数 encryptedData 必须是字符串"),
])
@pytest.mark.gen_test
async def test_get_user_info_refuses_bad_input_with_a_clear_message(api, case, message):
    info = user_info(appid="wx_other" if case == "wrong_appid" else APPID)
    override = {"wrong_appid": {}, "tampered": {"encryptedData": "A" * 64},
                "missing_iv": {"iv": ""}, "bad_key": {"login_key": "nope"},
                "operator": {"encryptedData": {"$ne": None}}}[case]
    answer = await user_info_request(api, "carol", info, **override)
    assert answer["code"] == "error" and answer["message"] == message


@pytest.mark.gen_test
async def test_v1_profile_fill_in_updates_the_sender_on_gifts(api):
    order_id = await api.create_gift(method="direct", sender_openid="o_dave")
    key = await api.login("dave")
    status, answer = await api.request("POST", "/api/v1/me/profile",
                                       {"nickname": "大卫", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/d.png"}, token=key)
    assert status == 200 and answer == {"nickname": "大卫", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/d.png"}
    status, view = await api.gift(await api.login("erin"), order_id)
    assert view["gift"]["sender"] == {"name": "大卫", "avatar": "https://thirdwx.qlogo.cn/mmopen/d.png"}


@pytest.mark.parametrize("body, status", [
    ({"nickname": "x" * 40}, 400), ({"avatar_url": "http://a.com/x.png"}, 400), ({}, 400),
    ({"nickname": ["a"]}, 400),
])
@pytest.mark.gen_test
async def test_v1_profile_refuses_bad_values(api, body, status):
    key = await api.login("frank")
    got, answer = await api.request("POST", "/api/v1/me/profile", body, token=key)
    assert got == status and answer["error"]["code"] in ("invalid_input", "missing_params")


@pytest.mark.gen_test
async def test_v1_profile_needs_a_login_key(api):
    status, answer = await api.request("POST", "/api/v1/me/profile", {"nickname": "x"})
    assert status == 401
