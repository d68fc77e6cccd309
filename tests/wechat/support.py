"""WeChat's encrypted user data made as WeChat makes it (AES-128-CBC, PKCS#7, base64), for the
tests of its decryption and of what the server does with it."""
import base64

from fakes.wechat import encrypt_user_data  # noqa: F401 (the stand-in's own, re-exported for these tests)

APPID = "wx_test_appid"
KEY = base64.b64encode(bytes(range(16))).decode()
IV = base64.b64encode(bytes(range(15, -1, -1))).decode()


def user_info(appid: str = APPID, **fields) -> dict:
    return {"nickName": "小红", "avatarUrl": "https://thirdwx.qlogo.cn/a.png",
            "watermark": {"appid": appid, "timestamp": 1700000000}, **fields}
