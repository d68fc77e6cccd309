"""Profiles: the fill-in from WeChat's encrypted user data and by hand, and what it may hold."""
from functools import partial

import pytest

from lottery.accounts import Accounts
from lottery.errors import InvalidInput
from lottery.profiles import Profiles
from wechat.userdata import decrypt_user_data
from tests.gifts import spec
from tests.wechat.support import APPID, IV, KEY, encrypt_user_data, user_info


@pytest.mark.gen_test
async def test_a_profile_change_reaches_the_members_gifts(db, gifts):
    gift = await gifts.create(spec("direct", ["A"], sender="o_red"))
    assert gift["sender"]["name"] == "微信用户"
    member_id = gift["sender_id"]
    await db.members.update_one({"_id": member_id}, {"$set": {"session_key": KEY}})
    profiles = Profiles(db, partial(decrypt_user_data, appid=APPID))
    data = encrypt_user_data(KEY, IV, user_info())
    assert await profiles.from_encrypted_user_info(member_id, IV, data) == {
        "nickname": "小红", "avatar_url": "https://thirdwx.qlogo.cn/a.png"}
    after = await db.gifts.find_one({"_id": gift["_id"]})
    assert after["sender"] == {"name": "小红", "avatar": "https://thirdwx.qlogo.cn/a.png"}
    assert after["version"] == gift["version"] + 1
    await profiles.update(member_id, nickname="  小红红 ")
    assert (await db.gifts.find_one({"_id": gift["_id"]}))["sender"]["name"] == "小红红"


@pytest.mark.gen_test
async def test_the_anonymous_wechat_name_never_replaces_a_chosen_one(db):
    member_id = await Accounts(db, None).ensure_member("o_x", session_key=KEY)
    profiles = Profiles(db, partial(decrypt_user_data, appid=APPID))
    await profiles.update(member_id, nickname="阿明", avatar_url="https://thirdwx.qlogo.cn/mmopen/m.png")
    anonymous = encrypt_user_data(KEY, IV, user_info(nickName="微信用户", avatarUrl="https://grey.png"))
    view = await profiles.from_encrypted_user_info(member_id, IV, anonymous)
    assert view == {"nickname": "阿明", "avatar_url": "https://thirdwx.qlogo.cn/mmopen/m.png"}


@pytest.mark.parametrize("body", [
    {}, {"nickname": ""}, {"nickname": "   "}, {"nickname": "x" * 33}, {"nickname": 5},
    {"avatar_url": "http://insecure.example.com/a.png"}, {"avatar_url": "javascript:alert(1)"},
    {"avatar_url": "https://"}, {"avatar_url": "https://a.com/" + "x" * 600}, {"avatar_url": {"$ne": 1}},
    {"avatar_url": "wxfile://tmp_abc.png"}, {"avatar_url": "https://evil.example/a.png"},
    {"avatar_url": "//thirdwx.qlogo.cn/a.png"}, {"avatar_url": "https://thirdwx.qlogo.cn@evil.example/a.png"},
])
@pytest.mark.gen_test
async def test_bad_profile_input_is_refused(db, body):
    member_id = await Accounts(db, None).ensure_member("o_y")
    with pytest.raises(InvalidInput):
        await Profiles(db, partial(decrypt_user_data, appid=APPID)).update(member_id, **body)
    assert (await db.members.find_one({"_id": member_id})).get("nickname") is None
