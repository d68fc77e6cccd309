"""The stand-in's trade bills (fakes/wechatpay.py): its own record of a day's payments and refunds
in WeChat Pay's layout behind a hash-checked download, NO_STATEMENT_EXIST for a day without
trades, and the plants tests use (an amount changed, a line dropped, a refund made elsewhere)."""
from datetime import datetime, timedelta

import pytest

from fakes.wechatpay import BILL_HEADER, CHINA
from lottery.reconciliation import parse_bill
from tests.wechatpay.support import TOTAL, failure, paid_order


def today() -> str:
    return datetime.now(CHINA).date().isoformat()


async def bill(client, day: str) -> bytes:
    answer = await client.trade_bill(day)
    assert answer["hash_type"] == "SHA1" and answer["download_url"].startswith(client.config.api_base)
    return await client.download_bill(answer["download_url"], answer["hash_type"], answer["hash_value"])


@pytest.mark.gen_test(timeout=30)
async def test_the_days_bill_lists_what_it_charged_and_refunded_in_wechat_pays_layout(client, fake):
    no = await paid_order(client, fake, "gift-order-0001")
    refund = await client.refund(no, f"{no}R1", 990, TOTAL, "未中奖")
    await fake.complete_refund(refund["out_refund_no"], "SUCCESS", notify=False)
    raw = await bill(client, today())
    assert raw.decode().startswith(BILL_HEADER + "\r\n") and "`" + fake.mchid in raw.decode()
    parsed = parse_bill(raw.decode())
    assert [(p.out_trade_no, p.amount) for p in parsed.payments] == [(no, TOTAL)]
    assert [(r.out_refund_no, r.amount, r.refund_status) for r in parsed.refunds] == [(f"{no}R1", 990, "SUCCESS")]


@pytest.mark.gen_test(timeout=30)
async def test_a_day_without_trades_or_not_over_answers_no_statement_exist(client, fake):
    for day in ((datetime.now(CHINA) - timedelta(days=3)).date().isoformat(),
                (datetime.now(CHINA) + timedelta(days=1)).date().isoformat()):
        error = await failure(client.trade_bill(day))
        assert (error.status, error.code) == (400, "NO_STATEMENT_EXIST")


@pytest.mark.gen_test(timeout=30)
async def test_a_download_whose_hash_does_not_match_is_refused(client, fake):
    await paid_order(client, fake, "gift-order-0001")
    answer = await client.trade_bill(today())
    error = await failure(client.download_bill(answer["download_url"], "SHA1", "0" * 40))
    assert error.code == "LOCAL_REPLY_UNVERIFIED"
    error = await failure(client.download_bill("https://elsewhere.example/file?token=x", "SHA1", "0" * 40))
    assert error.code == "LOCAL_REPLY_UNREADABLE"


@pytest.mark.gen_test(timeout=30)
async def test_planted_discrepancies_change_the_bill_and_nothing_else(client, fake):
    changed = await paid_order(client, fake, "gift-order-0001")
    dropped = await paid_order(client, fake, "gift-order-0002")
    manual = fake.plant_refund(changed, 500)
    fake.tamper_bill(changed, TOTAL + 1)
    fake.tamper_bill(dropped, None)
    parsed = parse_bill((await bill(client, today())).decode())
    assert [(p.out_trade_no, p.amount) for p in parsed.payments] == [(changed, TOTAL + 1)]
    assert [(r.out_refund_no, r.amount) for r in parsed.refunds] == [(manual, 500)]
    assert fake.transaction(dropped)["trade_state"] == "SUCCESS"  # charged all the same
    assert (await client.query_by_out_trade_no(changed))["amount"]["total"] == TOTAL
