"""Claiming a prize in a real browser: the winner gives an address on the result page and sees
the operator's shipping appear by itself; the sender sees who (masked) won each item and where
its claim stands, never the address; and a bought gift's unfilled items come back as refunds
through the local WeChat Pay fake, shown to the sender in ¥."""
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.pages.browser import call

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADDRESS = {"userName": "李小芳", "telNumber": "13912345678", "provinceName": "广东省", "cityName": "广州市",
           "countyName": "天河区", "detailInfo": "体育西路 8 号 1205 室", "postalCode": "510620"}


def beijing(iso: str) -> str:
    """A time as the pages show it: "11月25日 20:00", Beijing time."""
    at = datetime.fromisoformat(iso).astimezone(SHANGHAI)
    return f"{at.month}月{at.day}日 {at:%H:%M}"


def fill_address(person, address: dict) -> None:
    for name, value in address.items():
        person.page.fill(f"#claim-{name}", value)


def screenshot(person, name: str) -> None:
    """From the top of the page (the form scrolls to its error; the bar is sticky)."""
    person.page.evaluate("window.scrollTo(0, 0)")
    person.screenshot(name)


def claim_posts(person) -> list:
    """The claim requests the page sends from now on."""
    sent: list = []
    person.page.on("request", lambda r: r.method == "POST" and r.url.endswith("/claim") and sent.append(r))
    return sent


def until_claim_opened(site, claim_id: str) -> None:
    """Wait for the server's background to open the claim (it runs every half second here)."""
    deadline = time.monotonic() + 15
    with site.database() as db:
        while db.claims.find_one({"_id": claim_id}) is None:
            assert time.monotonic() < deadline, "the claim was not opened"
            time.sleep(0.1)


def test_a_winner_claims_with_an_address_and_sees_it_shipped_and_the_sender_never_sees_it(site, people):
    order_id = site.create_gift(method="direct", items=[{"name": "蓝牙耳机"}], wish="送你一副耳机")
    winner = people(site, "小芳").open(f"/gift/{order_id}")
    winner.page.click(".btn-join")
    expect(winner.page.locator("#outcome")).to_have_attribute("data-outcome", "won")
    expect(winner.page.locator("#claim-status")).to_have_text("待填写地址")
    status, claim = call(site.base_url, "GET", f"/api/v1/gifts/{order_id}/claim", token=site.sign_in("小芳"))
    assert status == 200, claim
    expect(winner.page.locator("#claim-deadline")).to_contain_text(f"北京时间 {beijing(claim['deadline_at'])} 前")

    # The page's own checks, as the server's: nothing is sent until the address would pass.
    posts = claim_posts(winner)
    fill_address(winner, {**ADDRESS, "telNumber": "1391234"})
    winner.page.click("#claim-submit")
    expect(winner.page.locator("#claim-error")).to_have_text("手机号码格式不正确")
    winner.page.fill("#claim-telNumber", ADDRESS["telNumber"])
    winner.page.fill("#claim-postalCode", "5106")
    winner.page.click("#claim-submit")
    expect(winner.page.locator("#claim-error")).to_have_text("邮政编码必须是 6 位数字")
    assert posts == []
    screenshot(winner, "claim-form")
    winner.page.fill("#claim-postalCode", ADDRESS["postalCode"])
    winner.page.click("#claim-submit")
    expect(winner.page.locator("#claim-status")).to_have_text("已填写地址")
    expect(winner.page.locator("#claim-address")).to_contain_text(ADDRESS["detailInfo"])
    assert len(posts) == 1

    # Until it ships the address may change.
    winner.page.click("#claim-edit")
    expect(winner.page.locator("#claim-detailInfo")).to_have_value(ADDRESS["detailInfo"])
    winner.page.fill("#claim-detailInfo", "体育西路 8 号 1206 室")
    winner.page.click("#claim-submit")
    expect(winner.page.locator("#claim-address")).to_contain_text("1206 室")
    winner.mark_document()

    # The sender sees who won (masked) and where the claim stands, never the address.
    sender = people(site, "小红").open(f"/gift/{order_id}/mine")
    item = sender.page.locator("#items .item[data-item='0']")
    expect(item).to_contain_text("蓝牙耳机")
    expect(item.locator(".person__name")).to_have_text("小*")
    expect(item.locator(".tag")).to_have_text("已填写地址")
    sender.mark_document()

    # The operator ships it: both pages show it by themselves.
    site.admin("POST", f"/api/admin/claims/{order_id}:0/ship", {"carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    expect(winner.page.locator("#claim-status")).to_have_text("已发货", timeout=15000)
    expect(winner.page.locator("#shipping")).to_have_text("顺丰速运 运单号 SF1234567890")
    expect(winner.page.locator("#claim-edit")).to_have_count(0)
    expect(item.locator(".tag")).to_have_text("已发货", timeout=15000)
    expect(item).to_contain_text("顺丰速运")
    assert winner.same_document() and sender.same_document()
    screenshot(winner, "claim-shipped")
    screenshot(sender, "mine-claims")
    seen_by_sender = sender.page.locator("body").inner_text()
    for private in (ADDRESS["telNumber"], ADDRESS["telNumber"][-4:], "体育西路", "1206", ADDRESS["userName"]):
        assert private not in seen_by_sender, private

    site.admin("POST", f"/api/admin/claims/{order_id}:0/delivered", {})
    expect(winner.page.locator("#claim-status")).to_have_text("已送达", timeout=15000)

    # My prizes lists it, with the way back to its gift.
    winner.page.goto(f"{site.base_url}/")
    winner.page.click("#prizes-link")
    prize = winner.page.locator(f"#prizes .line[data-claim='{order_id}:0']")
    expect(prize).to_contain_text("蓝牙耳机")
    expect(prize.locator(".tag")).to_have_text("已送达")
    expect(prize).to_contain_text("顺丰速运 运单号 SF1234567890")
    screenshot(winner, "prizes")
    prize.get_by_role("link", name="查看").click()
    expect(winner.page).to_have_url(f"{site.base_url}/gift/{order_id}/result")


def test_a_claim_past_its_deadline_shows_the_servers_refusal_as_it_words_it(site, people):
    order_id = site.create_gift(method="direct", items=[{"name": "电影票"}])
    winner = people(site, "迟到的赢家").open(f"/gift/{order_id}")
    winner.page.click(".btn-join")
    expect(winner.page.locator("#claim-form")).to_be_visible()
    # The deadline passes while the form is open.
    until_claim_opened(site, f"{order_id}:0")
    with site.database() as db:
        db.claims.update_one({"_id": f"{order_id}:0"}, {"$set": {"deadline_at": datetime.now(SHANGHAI)}})
    fill_address(winner, ADDRESS)
    winner.allow_errors(r"status of 410 .*/claim\)$")  # the browser logs the refusal (allowed before it can come)
    winner.page.click("#claim-submit")
    expect(winner.page.locator("#claim-error")).to_have_text("领奖已过期")
    expect(winner.page.locator("#claim-status")).to_have_text("已过期")
    expect(winner.page.locator("#claim-form")).to_have_count(0)


def demo_product(site, name: str) -> dict:
    status, answer = call(site.base_url, "GET", "/api/v1/products")
    assert status == 200, answer
    return next(p for p in answer["products"] if p["name"] == name)


def test_the_sender_sees_the_refund_of_a_gift_that_did_not_fill(site, people):
    cup = demo_product(site, "保温杯")
    key = site.sign_in("没凑满的人")
    status, created = call(site.base_url, "POST", "/api/v1/orders", {
        "items": [{"product_id": cup["product_id"], "quantity": 2}], "method": "full", "open_number": 3,
        "wish": "三个人来抽"}, token=key)
    assert status == 201, created
    order_id = created["order_id"]
    assert call(site.base_url, "POST", f"/api/dev/pay/{order_id}", {}, token=key)[0] == 200
    site.join(site.sign_in("参与的人"), order_id)
    sender = people(site, "没凑满的人").open(f"/gift/{order_id}/mine")
    expect(sender.page.locator("#progress")).to_have_text("1/3 人已参与")
    expect(sender.page.locator("#claims")).to_have_count(0)
    sender.mark_document()

    # Its deadline comes with one joiner for two items: one is drawn, the other refunded
    # through WeChat Pay (the fake completes refunds after two seconds).
    site.make_due(order_id)
    expect(sender.page.locator("#gift-status")).to_have_text("已开奖", timeout=15000)
    items = sender.page.locator("#items .item")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="参**人").locator(".tag")).to_have_text("待填写地址")
    expect(items.filter(has_text="无人领取")).to_have_count(1)
    refund = sender.page.locator(".refund")
    expect(refund).to_have_count(1, timeout=15000)
    expect(refund.locator(".refund__amount")).to_have_text("¥129.00")
    expect(refund.locator(".tag")).to_have_text("已退款", timeout=30000)
    expect(sender.page.locator("#refund-status")).to_contain_text("部分退款")
    expect(sender.page.locator("#refund-amounts")).to_have_text("已退 ¥129.00")
    expect(items.filter(has_text="无人领取").locator(".tag")).to_have_text("已退款")
    assert sender.same_document()
    screenshot(sender, "mine-refunded")
