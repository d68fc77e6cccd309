"""The operator's reconciliation routes over HTTP: a day's report (200, 404 for a day never
reconciled, 400 for a malformed day), and a rerun that replaces the day's report."""
import pytest

from lottery import clock
from tests.shop import bought_gift, product


@pytest.fixture
def app(build_app, payments):
    return build_app(payments=payments)


def today() -> str:
    return clock.utcnow().astimezone(clock.SHANGHAI).date().isoformat()


@pytest.mark.gen_test(timeout=60)
async def test_an_operator_reruns_a_day_and_reads_its_report_and_a_rerun_replaces_it(api, pay_fake):
    coffee = await product(api, "咖啡券", 2800, 10)
    order_id = await bought_gift(api, pay_fake, await api.login("buyer"), (coffee, 1))
    status, report = await api.request("POST", "/api/admin/reconciliation", {"date": today()}, token=api.admin_token)
    assert status == 200, report
    assert report["date"] == today() and report["status"] == "done" and report["mismatches"] == []
    assert report["summary"]["payments_here"] == report["summary"]["payments_there"] == 1
    pay_fake.tamper_bill(order_id, 2900)
    status, rerun = await api.request("POST", "/api/admin/reconciliation", {"date": today()}, token=api.admin_token)
    assert status == 200 and rerun["summary"]["mismatches"]["amount_differs"] == 1
    status, stored = await api.request("GET", f"/api/admin/reconciliation?date={today()}", token=api.admin_token)
    assert status == 200 and stored["mismatches"] == rerun["mismatches"] and stored["attempts"] == 2
    assert stored["mismatches"][0] == {"kind": "amount_differs", "out_trade_no": order_id, "amount_there": 2900,
                                       "amount_here": 2800}


@pytest.mark.gen_test(timeout=60)
async def test_a_day_never_reconciled_answers_404_and_a_malformed_or_future_day_400(api):
    status, answer = await api.request("GET", "/api/admin/reconciliation?date=2026-01-02", token=api.admin_token)
    assert status == 404 and answer["error"]["code"] == "reconciliation_not_found"
    for bad in ("2026-13-01", "20260102", "", "2999-01-01"):
        status, answer = await api.request("GET", f"/api/admin/reconciliation?date={bad}", token=api.admin_token)
        assert status == 400, (bad, answer)
    status, _ = await api.request("POST", "/api/admin/reconciliation", {"date": "yesterday"}, token=api.admin_token)
    assert status == 400
    status, _ = await api.request("GET", f"/api/admin/reconciliation?date={today()}")
    assert status in (401, 403)
