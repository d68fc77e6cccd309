"""The user data WeChat encrypts with a member's session key (the seed's getUserInfo, and later
the group and phone data): AES-128-CBC, PKCS#7 padding, JSON with a `watermark.appid` that must be
this mini-program's."""
import base64
import binascii
import json

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from lottery.errors import DecryptionFailed, WrongAppid


def _b64(value: str, name: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptionFailed(f"参数 {name} 不是合法的 base64") from exc
    if length is not None and len(raw) != length:
        raise DecryptionFailed(f"参数 {name} 长度错误")
    return raw


def decrypt_user_data(session_key: str, iv: str, encrypted_data: str, appid: str) -> dict:
    """WeChat's encrypted user data: AES-128-CBC with the session key, PKCS#7 padding, JSON
    with a `watermark.appid` that must be ours. DecryptionFailed or WrongAppid otherwise."""
    key = _b64(session_key, "session_key", 16)
    vector = _b64(iv, "iv", 16)
    data = _b64(encrypted_data, "encryptedData")
    if not data or len(data) % 16:
        raise DecryptionFailed("参数 encryptedData 长度错误")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(vector)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        decoded = json.loads(plain.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        # Wrong key, tampered data or iv: the padding or the JSON does not survive.
        raise DecryptionFailed() from exc
    if not isinstance(decoded, dict) or not isinstance(decoded.get("watermark"), dict):
        raise DecryptionFailed()
    if not appid or decoded["watermark"].get("appid") != appid:
        raise WrongAppid()
    return decoded
