"""Profiles: WeChat's encrypted user data (AES-128-CBC, PKCS#7, watermark) and the fill-in."""
import base64
from functools import partial
import json

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lottery.accounts import Accounts
from lottery.errors import DecryptionFailed, InvalidInput, WrongAppid
from lottery.profiles import Profiles
from wechat.userdata import decrypt_user_data
from tests.gifts import spec

APPID = "wx_test_appid"
KEY = base64.b64encode(bytes(range(16))).decode()
IV = base64.b64encode(bytes(range(15, -1, -1))).decode()
# Made with `openssl enc -aes-128-cbc -K 000102..0f -iv 0f0e..00` from the JSON below: an
# implementation independent of the one under test.
OPENSSL_VECTOR = ("yjzI9aomWSSJl0PfI7nnBpQHsFasw5PAxqc/HmUcUwq1iprsZfyWyf/WA/2TIUQ1h8um6RaOCzfoFloPotUK2Y6BQ3BX2YfG"
                  "Af9Jnj+VDpE95manqRmC1e18v1F5aZAbjR1aEQTeRlbu2pWGg8j7eGLPgKUXfauoYifvJKfv90k=")


def encrypt_user_data(key: str, iv: str, info: dict) -> str:
    """What WeChat sends as encryptedData: AES-128-CBC, PKCS#7, base64."""
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(info, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(base64.b64decode(iv))).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def user_info(appid: str = APPID, **fields) -> dict:
    return {"nickName": "小红", "avatarUrl": "https://thirdwx.qlogo.cn/a.png",
            "watermark": {"appid": appid, "timestamp": 1700000000}, **fields}


def test_the_openssl_vector_decrypts():
    info = decrypt_user_data(KEY, IV, OPENSSL_VECTOR, APPID)
    assert info["nickName"] == "小红" and info["watermark"]["appid"] == APPID


def test_data_built_with_the_same_algorithm_round_trips():
    assert decrypt_user_data(KEY, IV, encrypt_user_data(KEY, IV, user_info()), APPID) == user_info()


def test_another_mini_programs_data_is_refused():
    with pytest.raises(WrongAppid):
        decrypt_user_data(KEY, IV, encrypt_user_data(KEY, IV, user_info(appid="wx_other")), APPID)


@pytest.mark.parametrize("tamper", ["last_byte", "iv", "key", "truncated", "not_base64", "empty"])
def test_tampered_data_is_refused(tamper):
    data, iv, key = encrypt_user_data(KEY, IV, user_info()), IV, KEY
    raw = bytearray(base64.b64decode(data))
    if tamper == "last_byte":
        raw[-1] ^= 0x5A
        data = base64.b64encode(bytes(raw)).decode()
    elif tamper == "iv":
        iv = base64.b64encode(bytes(16)).decode()  # garbles the first block: no longer JSON
    elif tamper == "key":
        key = base64.b64encode(b"k" * 16).decode()
    elif tamper == "truncated":
        data = base64.b64encode(bytes(raw[:-3])).decode()
    elif tamper == "not_base64":
        data = "%%%"
    elif tamper == "empty":
        data = ""
    with pytest.raises(DecryptionFailed):
        decrypt_user_data(key, iv, data, APPID)


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
