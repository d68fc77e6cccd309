"""The shop in a real browser, against a --demo server (its demo catalogue and the local WeChat
Pay fake): from the catalogue through the create-gift form and the pay step (the development
"模拟支付", whose fake sends the server its real signed notify) to the pay-result page and a
gift a friend joins; the form's refusals, and one order per form however often it is sent."""
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.pages.browser import Site, call, start_server

SHANGHAI = ZoneInfo("Asia/Shanghai")


def login_key(person) -> str:
    """The key the page signed in with (as the pages keep it)."""
    return person.page.evaluate("localStorage.getItem('giftLottery.loginKey')")


def orders_of(site, key: str) -> list[dict]:
    status, answer = call(site.base_url, "GET", "/api/v1/orders", token=key)
    assert status == 200, answer
    return answer["orders"]


def order(site, key: str, order_id: str) -> dict:
    status, answer = call(site.base_url, "GET", f"/api/v1/orders/{order_id}", token=key)
    assert status == 200, answer
    return answer


def product(site, name: str) -> dict:
    """A demo product as the catalogue shows it now."""
    status, answer = call(site.base_url, "GET", "/api/v1/products")
    assert status == 200, answer
    return next(p for p in answer["products"] if p["name"] == name)


def pay_step_order_id(person, site) -> str:
    expect(person.page).to_have_url(re.compile(rf"^{re.escape(site.base_url)}/orders/[0-9a-f]+/pay$"))
    return person.page.url.split("/")[-2]


def test_a_buyer_goes_from_the_shop_to_a_paid_gift_that_a_friend_joins(site, people):
    buyer = people(site, "买家小王", signed_in=False).open("/")
    buyer.page.click("#shop-link")
    expect(buyer.page).to_have_url(f"{site.base_url}/shop")
    tabs = buyer.page.locator("#categories .tab")
    expect(tabs).to_have_text(["全部", "零食饮品", "生活好物", "节日礼盒"])
    expect(buyer.page.locator("#products .product")).to_have_count(7)
    expect(buyer.page.locator("#products .product", has_text="蓝牙耳机")).to_contain_text("¥199.00")
    expect(buyer.page.locator("#more")).to_be_hidden()
    buyer.screenshot("shop")

    tabs.filter(has_text="生活好物").click()
    expect(tabs.filter(has_text="生活好物")).to_have_attribute("aria-pressed", "true")
    names = buyer.page.locator("#products .product__name")
    expect(names).to_have_count(2)
    assert sorted(names.all_text_contents()) == ["保温杯", "蓝牙耳机"]
    buyer.page.locator("#products .product", has_text="蓝牙耳机").click()
    expect(buyer.page.locator("#product-name")).to_have_text("蓝牙耳机")
    expect(buyer.page.locator("#product-price")).to_have_text("¥199.00")
    buyer.screenshot("product")

    # The form needs a member: the development sign-in first, then the product is preselected.
    buyer.page.click("#give")
    buyer.page.fill("#name", "买家小王")
    buyer.page.click("text=进入")
    lines = buyer.page.locator("#lines .line")
    expect(lines).to_have_count(1)
    expect(lines.first).to_contain_text("蓝牙耳机")
    buyer.page.select_option("#add-product", product(site, "保温杯")["product_id"])
    expect(lines).to_have_count(2)
    lines.filter(has_text="保温杯").get_by_role("button", name="增加").click()
    expect(buyer.page.locator("#total")).to_have_text("¥457.00")  # 199 + 2 × 129, from the catalogue
    expect(buyer.page.locator("#count")).to_have_text("共 3 份")
    buyer.page.check("input[name=method][value=full]")
    buyer.page.fill("#open-number", "2")
    buyer.page.fill("#wish", "一起来抽")
    buyer.screenshot("new-gift")
    buyer.page.click("#submit")

    order_id = pay_step_order_id(buyer, site)
    expect(buyer.page.locator("#pay-amount")).to_have_text("¥457.00")
    expect(buyer.page.locator("#order-status")).to_have_text("待支付")
    buyer.screenshot("pay")
    buyer.page.click("#dev-pay")

    expect(buyer.page).to_have_url(f"{site.base_url}/orders/{order_id}")
    expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "paid")
    share = buyer.page.locator("#share-link")
    expect(share).to_have_attribute("href", f"/gift/{order_id}")
    expect(share).to_have_text(f"{site.base_url}/gift/{order_id}")
    expect(buyer.page.locator("#share-field")).to_have_value(f"{site.base_url}/gift/{order_id}")
    buyer.screenshot("pay-result")
    # The server priced it and its WeChat Pay notify paid it.
    paid = order(site, login_key(buyer), order_id)
    assert paid["status"] == "paid" and paid["amount_total"] == 45700 and paid["method"] == "full"
    assert [(line["name"], line["quantity"]) for line in paid["lines"]] == [("蓝牙耳机", 1), ("保温杯", 2)]

    # A friend opens the shared link and joins; the join page shows the buyer as the sender.
    friend = people(site, "好友小李")
    friend.page.goto(buyer.page.locator("#share-field").input_value())
    expect(friend.page.locator(".card__name")).to_have_text("买家小王")
    expect(friend.page.locator(".card__info")).to_have_text("发起一个抽奖，满2人开奖")
    expect(friend.page.locator(".card__wish")).to_have_text("一起来抽")
    friend.page.click(".btn-join")
    expect(friend.page.locator("#progress")).to_have_text("1/2 人已参与")

    # The buyer's way to the sender's view.
    buyer.page.click("#mine-link")
    expect(buyer.page).to_have_url(f"{site.base_url}/gift/{order_id}/mine")
    expect(buyer.page.locator("#progress")).to_have_text("1/2 人已参与")
    expect(buyer.page.locator("#participants .person__name")).to_have_text(["好友小李"])


def test_the_pay_result_page_waits_for_the_payment_and_then_shows_the_share_link(site, people):
    buyer = people(site, "等结果的人")
    key = site.sign_in("等结果的人")
    status, created = call(site.base_url, "POST", "/api/v1/orders",
                           {"items": [{"product_id": product(site, "红包封面")["product_id"], "quantity": 3}],
                            "method": "direct"}, token=key)
    assert status == 201, created
    order_id = created["order_id"]
    buyer.open(f"/orders/{order_id}")
    expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "waiting")
    expect(buyer.page.locator("#share-link")).to_have_count(0)
    buyer.mark_document()
    status, _ = call(site.base_url, "POST", f"/api/dev/pay/{order_id}", {}, token=key)
    assert status == 200
    expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "paid")
    expect(buyer.page.locator("#share-link")).to_have_attribute("href", f"/gift/{order_id}")
    assert buyer.same_document()


def test_the_form_shows_the_servers_refusal_of_more_than_is_in_stock(site, people):
    nuts = product(site, "坚果礼盒")
    buyer = people(site, "贪心的人").open(f"/shop/new?product={nuts['product_id']}")
    quantity = buyer.page.get_by_label("坚果礼盒 数量")
    quantity.fill(str(nuts["stock"] + 1))
    expect(buyer.page.locator("#total")).to_have_text(f"¥{nuts['price'] * (nuts['stock'] + 1) // 100}.00")
    buyer.allow_errors(r"status of 409 .*/api/v1/orders\)$")  # the browser logs the refusal
    buyer.page.click("#submit")
    expect(buyer.page.locator("#form-error")).to_have_text("库存不足：坚果礼盒")
    expect(buyer.page.locator("#submit")).to_be_enabled()
    expect(buyer.page).to_have_url(re.compile(r"/shop/new\?product="))
    assert orders_of(site, login_key(buyer)) == []
    # Corrected, the same form goes through.
    quantity.fill("1")
    buyer.page.click("#submit")
    order_id = pay_step_order_id(buyer, site)
    assert [o["order_id"] for o in orders_of(site, login_key(buyer))] == [order_id]


def test_the_form_asks_for_a_gift_before_it_sends_anything(site, people):
    buyer = people(site, "空手的人").open("/shop/new")
    expect(buyer.page.locator("#lines")).to_contain_text("还没有选礼物")
    expect(buyer.page.locator("#total")).to_have_text("¥0.00")
    buyer.page.click("#submit")
    expect(buyer.page.locator("#form-error")).to_have_text("请至少选择一件礼物")
    assert orders_of(site, login_key(buyer)) == []


def test_a_double_tap_on_the_form_makes_one_order(site, people):
    buyer = people(site, "连点两下").open(f"/shop/new?product={product(site, '奶茶券')['product_id']}")
    expect(buyer.page.locator("#lines .line")).to_have_count(1)
    sent = []
    buyer.page.on("request", lambda r: r.method == "POST" and r.url.endswith("/api/v1/orders") and sent.append(r))
    buyer.page.dblclick("#submit")
    order_id = pay_step_order_id(buyer, site)
    expect(buyer.page.locator("#pay-amount")).to_have_text("¥18.00")
    assert len(sent) == 1  # the button waits for the answer
    assert [o["order_id"] for o in orders_of(site, login_key(buyer))] == [order_id]


def test_a_second_tap_after_a_lost_answer_is_the_same_order(site, people):
    buyer = people(site, "网络不好").open(f"/shop/new?product={product(site, '咖啡券')['product_id']}")
    expect(buyer.page.locator("#lines .line")).to_have_count(1)
    sent: list[str | None] = []
    buyer.page.on("request", lambda r: r.method == "POST" and r.url.endswith("/api/v1/orders")
                  and sent.append(r.headers.get("idempotency-key")))
    made: list[str] = []

    def lose_answer(route):
        made.append(route.fetch().json()["order_id"])  # the server made the order...
        route.abort()  # ...but its answer never reached the page

    buyer.page.route("**/api/v1/orders", lose_answer, times=1)
    buyer.allow_errors(r"ERR_FAILED")
    buyer.page.click("#submit")
    expect(buyer.page.locator("#form-error")).to_have_text("网络不给力，请稍后再试")
    buyer.page.click("#submit")
    assert pay_step_order_id(buyer, site) == made[0]
    assert len(sent) == 2 and sent[0] and sent[0] == sent[1], sent
    assert [o["order_id"] for o in orders_of(site, login_key(buyer))] == made


def test_a_timed_gift_opens_at_the_time_picked_in_the_form(site, people):
    coffee = product(site, "咖啡券")
    buyer = people(site, "定时的人").open(f"/shop/new?product={coffee['product_id']}")
    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).date()
    buyer.page.check("input[name=method][value=timed]")
    # The browser's zone is Asia/Shanghai here, so the picker's time is Beijing time.
    buyer.page.fill("#open-at", f"{tomorrow.isoformat()}T20:30")
    expect(buyer.page.locator("#open-at-hint")).to_have_text(f"北京时间 {tomorrow.month}月{tomorrow.day}日 20:30 开奖")
    buyer.page.click("#submit")
    order_id = pay_step_order_id(buyer, site)
    buyer.page.click("#dev-pay")
    expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "paid")
    gift = site.gift(login_key(buyer), order_id)["gift"]
    assert gift["method"] == "timed"
    assert datetime.fromisoformat(gift["open_at"]) == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 20, 30,
                                                               tzinfo=SHANGHAI)


def test_an_unknown_product_says_so_on_its_page_and_in_the_form(site, people):
    visitor = people(site, "看看而已")
    visitor.allow_errors(r"status of 404 .*/api/v1/products/")  # the browser logs the 404
    visitor.open("/shop/product/0000000000000000000000ff")
    expect(visitor.page.locator("#failure")).to_have_text("商品不存在")
    visitor.open("/shop/new?product=0000000000000000000000ff")
    expect(visitor.page.locator("#form-error")).to_have_text("这件商品不存在或已下架，请另选礼物")
    expect(visitor.page.locator("#lines .line--empty")).to_be_visible()


def test_an_order_left_unpaid_closes_and_its_page_says_so(engine_uri, people):
    process = start_server(engine_uri, "--demo", "--order_expire_minutes=0.05")  # three seconds to pay
    try:
        site = Site(process)
        buyer = people(site, "忘了付款")
        key = site.sign_in("忘了付款")
        status, created = call(site.base_url, "POST", "/api/v1/orders",
                               {"items": [{"product_id": product(site, "奶茶券")["product_id"], "quantity": 1}],
                                "method": "direct"}, token=key)
        assert status == 201, created
        buyer.open(f"/orders/{created['order_id']}")
        expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "closed", timeout=30000)
        expect(buyer.page.locator("#pay-status")).to_have_text("订单已关闭")
        expect(buyer.page.locator(".card")).to_contain_text("超时未支付")
        expect(buyer.page.locator("#share-link")).to_have_count(0)
        # The pay step of a closed order goes to this page too.
        buyer.open(f"/orders/{created['order_id']}/pay")
        expect(buyer.page).to_have_url(f"{site.base_url}/orders/{created['order_id']}")
        expect(buyer.page.locator("#pay-status")).to_have_attribute("data-status", "closed")
    finally:
        process.stop()
