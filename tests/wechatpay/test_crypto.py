"""WeChat Pay's signature and encryption formats, checked by hand with `cryptography` alone on
what our client sends and what the stand-in sends back: both build them with wechatpay/crypto.py,
so a format both got wrong in the same way would pass every round trip."""
import base64
import json
import re

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fakes.wechatpay import APIV3_KEY, MCHID
from tests.wechatpay.support import OPENID, TOTAL, expire_in


@pytest.mark.gen_test(timeout=30)
async def test_signatures_and_ciphertext_follow_wechat_pay_documented_formats(client, fake):
    """Checked here by hand with `cryptography` alone, so that a format shared wrongly by the
    client and the fake cannot pass: the request string, the notify string, AES-256-GCM."""
    await client.jsapi_prepay("gift-order-0001", "礼物", TOTAL, OPENID, expire_in())
    [request] = fake.requests_to("/v3/pay/transactions/jsapi")
    auth = dict(re.findall(r'(\w+)="([^"]*)"', request.headers["Authorization"].split(" ", 1)[1]))
    assert request.headers["Authorization"].startswith("WECHATPAY2-SHA256-RSA2048 mchid=")
    assert (auth["mchid"], auth["serial_no"]) == (MCHID, fake.merchant.serial)
    merchant = serialization.load_pem_public_key(fake.merchant.public_pem)
    merchant.verify(base64.b64decode(auth["signature"]),
                    b"POST\n/v3/pay/transactions/jsapi\n" + f"{auth['timestamp']}\n{auth['nonce_str']}\n".encode()
                    + request.body + b"\n", padding.PKCS1v15(), hashes.SHA256())

    [delivery] = await fake.pay("gift-order-0001")
    wechat = serialization.load_pem_public_key(fake.public_key_pem)
    headers = delivery.headers
    assert headers["Wechatpay-Serial"] == fake.public_key_id
    wechat.verify(base64.b64decode(headers["Wechatpay-Signature"]),
                  f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + delivery.body + b"\n",
                  padding.PKCS1v15(), hashes.SHA256())
    resource = json.loads(delivery.body)["resource"]
    plain = AESGCM(APIV3_KEY.encode()).decrypt(resource["nonce"].encode(), base64.b64decode(resource["ciphertext"]),
                                               resource["associated_data"].encode())
    assert json.loads(plain)["out_trade_no"] == "gift-order-0001"
