"""Domain fixtures: WeChat Pay (the local stand-in) reached by our client, whose notifies reach no
server (a domain test applies them itself, verified by that client, as the notify routes do), and
the order and claim services over the test database."""
import pytest

from lottery.claims import Claims
from lottery.orders import Orders
from wechatpay.client import WeChatPayClient

NOWHERE = "http://127.0.0.1:9"  # nothing listens: the fake's notifies go unanswered


@pytest.fixture
def payments(pay_fake) -> WeChatPayClient:
    return WeChatPayClient(pay_fake.client_config(f"{NOWHERE}/notify", f"{NOWHERE}/refund-notify"), timeout=5)


@pytest.fixture
def orders(db, payments) -> Orders:
    return Orders(db, payments, mchid=payments.config.mchid, appid=payments.config.appid)


@pytest.fixture
def claims(db) -> Claims:
    return Claims(db)
