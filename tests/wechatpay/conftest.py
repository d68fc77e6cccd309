"""The WeChat Pay fixtures (tests/wechatpay/support.py) for our client's tests."""
from tests.wechatpay.support import client, fake, make_client, receiver  # noqa: F401 (fixtures)
