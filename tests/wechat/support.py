"""WeChat's encrypted user data made as WeChat makes it (AES-128-CBC, PKCS#7, base64), for the
tests of its decryption and of what the server does with it."""
import base64
import json

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

APPID = "wx_test_appid"
KEY = base64.b64encode(bytes(range(16))).decode()
IV = base64.b64encode(bytes(range(15, -1, -1))).decode()


def encrypt_user_data(key: str, iv: str, info: dict) -> str:
    """What WeChat sends as encryptedData: AES-128-CBC, PKCS#7, base64."""
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(info, ensure_ascii=False).encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(base64.b64decode(key)), modes.CBC(base64.b64decode(iv))).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def user_info(appid: str = APPID, **fields) -> dict:
    return {"nickName": "小红", "avatarUrl": "https://thirdwx.qlogo.cn/a.png",
            "watermark": {"appid": appid, "timestamp": 1700000000}, **fields}
