"""WeChat's encrypted user data (wechat/userdata.py): AES-128-CBC with the session key, PKCS#7
padding, and a watermark naming this mini-program; anything else is refused."""
import base64

import pytest

from lottery.errors import DecryptionFailed, WrongAppid
from wechat.userdata import decrypt_user_data
from tests.wechat.support import APPID, IV, KEY, encrypt_user_data, user_info

# Made with `openssl enc -aes-128-cbc -K 000102..0f -iv 0f0e..00` from the JSON of `user_info()`: an
# implementation independent of the one under test.
OPENSSL_VECTOR = ("yjzI9aomWSSJl0PfI7nnBpQHsFasw5PAxqc/HmUcUwq1iprsZfyWyf/WA/2TIUQ1h8um6RaOCzfoFloPotUK2Y6BQ3BX2YfG"
                  "Af9Jnj+VDpE95manqRmC1e18v1F5aZAbjR1aEQTeRlbu2pWGg8j7eGLPgKUXfauoYifvJKfv90k=")


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
