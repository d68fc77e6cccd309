"""The WeChat Pay fixtures (tests/wechatpay/support.py) for the stand-in's own tests."""
from tests.wechatpay.support import client, fake, make_client, receiver  # noqa: F401 (fixtures)
