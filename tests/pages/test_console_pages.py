"""The operator's console in a real browser, against one --demo server (its demo catalogue and the
local WeChat Pay fake): the first owner made on the command line, signing in, today, the
catalogue with an uploaded image, an order's whole story and a refund by hand, shipping one by
one and by CSV (a bad row applies nothing), two operators shipping the same claim, gifts and a
stuck draw, accounts, the audit log; and the refusals: a wrong password, staff refunding or
managing accounts, a post without the page's XSRF token, a disabled account's open session."""
import csv
import io
import os
import subprocess
import sys
import time

import pytest
from playwright.sync_api import expect

from tests.api import ADMIN_TOKEN
from tests.pages.browser import call
from tests.servers import ROOT
from tests.shop import ADDRESS
from tests.waiting import wait_until

DESK = {"width": 1280, "height": 900}
OWNER, OWNER_PASSWORD = "boss", "owner-password-1"
# A refusal is a page with its 4xx status, which Chromium logs as a failed load.
REFUSAL_PAGE = r"the server responded with a status of 4\d\d"
# The smallest PNG: one transparent pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")


def create_owner(site, name: str, password: str) -> subprocess.CompletedProcess:
    """`python server.py create-owner NAME`, the password on stdin, against the site's database."""
    env = {**os.environ, "MONGODB_URI": site.process.env["MONGODB_URI"]}
    return subprocess.run([sys.executable, os.path.join(ROOT, "server.py"), "create-owner", name],
                          input=password + "\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def owner_made(site):
    made = create_owner(site, OWNER, OWNER_PASSWORD)
    assert made.returncode == 0 and "owner boss created" in made.stdout, made.stderr
    return site


def sign_in(people, site, name: str, password: str):
    operator = people(site, name, signed_in=False, viewport=DESK)
    operator.allow_errors(REFUSAL_PAGE)
    operator.open("/admin")
    expect(operator.page).to_have_url(f"{site.base_url}/admin/login?next=%2Fadmin")
    operator.page.fill("input[name=name]", name)
    operator.page.fill("input[name=password]", password)
    operator.page.click("#sign-in button[type=submit]")
    expect(operator.page.locator("#who")).to_contain_text(name)
    return operator


def invite(site, owner, name: str, role: str = "staff") -> str:
    """The owner invites an account on the accounts page; its first password, as shown once."""
    owner.page.goto(site.base_url + "/admin/accounts")
    owner.page.fill("#invite input[name=name]", name)
    owner.page.select_option("#invite select[name=role]", role)
    owner.page.click("#invite button")
    return owner.page.locator("#invited-password").inner_text()


def audit_entries(site, action: str) -> list[dict]:
    with site.database() as db:
        return list(db.audit.find({"action": action}))


def bought_gift_with_claims(site, winners: list[str], quantity: int = 2) -> tuple[str, list[str]]:
    """A paid direct gift of the demo 保温杯 whose first items were won and claimed by `winners`."""
    cup = next(p for p in call(site.base_url, "GET", "/api/v1/products")[1]["products"] if p["name"] == "保温杯")
    buyer = site.sign_in("送礼的人")
    status, created = call(site.base_url, "POST", "/api/v1/orders", {
        "items": [{"product_id": cup["product_id"], "quantity": quantity}], "method": "direct"}, token=buyer)
    assert status == 201, created
    order_id = created["order_id"]
    assert call(site.base_url, "POST", f"/api/dev/pay/{order_id}", {}, token=buyer)[0] == 200
    claim_ids = []
    for name in winners:
        key = site.sign_in(name)
        site.join(key, order_id)
        status, claim = call(site.base_url, "POST", f"/api/v1/gifts/{order_id}/claim", ADDRESS, token=key)
        assert status == 200, claim
        claim_ids.append(claim["claim_id"])
    return order_id, claim_ids


def test_the_first_owner_is_made_on_the_command_line_and_a_wrong_password_is_refused(owner_made, people):
    site = owner_made
    again = create_owner(site, OWNER, "another-password")
    assert again.returncode != 0 and "已存在" in again.stderr
    assert create_owner(site, "shorty", "short").returncode != 0  # no weak first password either

    stranger = people(site, "stranger", signed_in=False, viewport=DESK)
    stranger.allow_errors(REFUSAL_PAGE)
    stranger.open("/admin/login")
    stranger.page.fill("input[name=name]", OWNER)
    stranger.page.fill("input[name=password]", "not-the-password")
    stranger.page.click("#sign-in button[type=submit]")
    expect(stranger.page.locator("#error")).to_have_text("账号、密码或动态码错误")
    expect(stranger.page.locator("#who")).to_have_count(0)

    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    expect(owner.page).to_have_url(f"{site.base_url}/admin")
    expect(owner.page.locator("#figures-today")).to_contain_text("今天收款")
    cookie = next(c for c in owner.context.cookies() if c["name"] == "console_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    assert not cookie["secure"]  # on loopback only; anywhere else the cookie is Secure
    owner.screenshot("console-today")

    owner.page.click("#sign-out")
    expect(owner.page).to_have_url(f"{site.base_url}/admin/login")
    owner.page.goto(site.base_url + "/admin/orders")  # the session ended on the server
    expect(owner.page).to_have_url(f"{site.base_url}/admin/login?next=%2Fadmin%2Forders")


def test_an_operator_adds_and_edits_a_product_with_an_uploaded_image(owner_made, people, tmp_path):
    site = owner_made
    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    owner.page.goto(site.base_url + "/admin/catalogue")
    owner.page.fill("#new-category input[name=name]", "数码配件")
    owner.page.click("#new-category button")
    expect(owner.page.locator("#done")).to_have_text("已添加分类")
    expect(owner.page.locator("#categories")).to_contain_text("数码配件")

    form = owner.page.locator("#new-product")
    form.locator("input[name=name]").fill("充电宝")
    form.locator("input[name=price]").fill("abc")
    form.locator("input[name=stock]").fill("10")
    form.locator("button").click()
    expect(owner.page.locator("#error")).to_contain_text("金额")  # hostile input: a clear refusal
    owner.page.go_back()
    form.locator("input[name=price]").fill("89.90")
    form.locator("select[name=category_id]").select_option(label="数码配件")
    form.locator("button").click()
    expect(owner.page.locator("#done")).to_have_text("已保存商品")
    product_id = owner.page.url.split("/")[-1].split("?")[0]

    edit = owner.page.locator("#edit-product")
    edit.locator("input[name=price]").fill("79.90")
    edit.locator("input[name=stock]").fill("3")
    edit.locator("input[name=on_sale]").uncheck()
    edit.locator("button").click()
    expect(owner.page.locator("#done")).to_have_text("已保存商品")
    assert call(site.base_url, "GET", f"/api/v1/products/{product_id}")[0] == 404  # off sale

    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"<svg onload=alert(1)>")
    owner.page.set_input_files("#upload-image input[type=file]", str(bad))
    owner.page.click("#upload-image button")
    expect(owner.page.locator("#error")).to_have_text("只支持 PNG、JPEG、GIF 或 WebP 图片")
    owner.page.go_back()
    image = tmp_path / "cup.png"
    image.write_bytes(PNG)
    owner.page.set_input_files("#upload-image input[type=file]", str(image))
    owner.page.click("#upload-image button")
    expect(owner.page.locator("#done")).to_have_text("图片已上传")
    expect(owner.page.locator("#images img")).to_have_count(1)
    assert owner.page.locator("#images img").evaluate("img => img.naturalWidth") == 1  # served from /media/

    with site.database() as db:
        stored = db.products.find_one({"_id": product_id})
    assert (stored["price"], stored["stock"], stored["on_sale"]) == (7990, 3, False)
    assert stored["images"][0].startswith("/media/") and stored["images"][0].endswith(".png")
    changes = [e for e in audit_entries(site, "product.change") if e["target"] == f"product:{product_id}"]
    assert [(e["who"], e["before"], e["after"]) for e in changes][0] == (
        OWNER, {"price": 8990, "stock": 10, "on_sale": True}, {"price": 7990, "stock": 3, "on_sale": False})
    assert len(changes) == 2  # the edit and the image: each action once
    owner.screenshot("console-product")


def test_an_orders_story_and_a_refund_by_hand_that_only_an_owner_may_make(owner_made, people):
    site = owner_made
    order_id, [claim_id] = bought_gift_with_claims(site, ["小李"])
    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    owner.page.goto(site.base_url + "/admin/orders")
    expect(owner.page.locator("#orders")).to_contain_text(order_id)  # paid today
    owner.page.fill("#order-search input[name=order_id]", order_id)
    owner.page.click("#order-search button")
    owner.page.click(f"#orders a[href='/admin/orders/{order_id}']")
    expect(owner.page.locator("#order-status")).to_have_text("已支付")
    expect(owner.page.locator("#joins")).to_have_text("1")
    expect(owner.page.locator("#proof-link")).to_have_count(0)  # a direct gift has no draw
    expect(owner.page.locator(f"#claims tr[data-claim='{claim_id}']")).to_contain_text("已填写地址")
    owner.page.click("#query-payment button")
    expect(owner.page.locator("#done")).to_have_text("已向微信支付查询")

    # Staff see no refund, and a refund posted by hand (with the page's own token) is refused.
    staff = sign_in(people, site, "clerk", invite(site, owner, "clerk"))
    staff.page.goto(f"{site.base_url}/admin/orders/{order_id}")
    expect(staff.page.locator(".refund-form")).to_have_count(0)
    token = staff.page.locator("#query-payment input[name=_xsrf]").get_attribute("value")
    refused = staff.page.request.post(f"{site.base_url}/admin/claims/{claim_id}/refund",
                                      form={"_xsrf": token, "reason": "想退"}, max_redirects=0)
    assert refused.status == 403 and "只有店主" in refused.text()
    staff.page.goto(site.base_url + "/admin/accounts")
    expect(staff.page.locator("#error")).to_have_text("只有店主可以进行此操作")

    owner.page.goto(f"{site.base_url}/admin/orders/{order_id}")
    form = owner.page.locator(f"tr[data-claim='{claim_id}'] .refund-form")
    form.locator("input[name=reason]").fill("缺货，与买家协商退款")
    form.locator("button").click()
    expect(owner.page.locator("#done")).to_contain_text("已提交退款")
    expect(owner.page.locator(f"#claims tr[data-claim='{claim_id}']")).to_contain_text("已退款")
    # The refund worker sends it to WeChat Pay (the fake ends it two seconds later).
    wait_until(lambda: call(site.base_url, "GET", "/api/admin/refunds?status=success",
                            token=ADMIN_TOKEN)[1]["refunds"], timeout=30)
    owner.page.reload()
    expect(owner.page.locator("#refunds")).to_contain_text("¥129.00 · 已退款")
    expect(owner.page.locator("#order-status")).to_have_text("部分退款")
    assert len([e for e in audit_entries(site, "claim.refund") if e["target"] == f"claim:{claim_id}"]) == 1
    owner.screenshot("console-order")


def test_shipping_by_csv_applies_nothing_when_a_row_is_bad_and_two_operators_ship_one_claim_once(
        owner_made, people, tmp_path):
    site = owner_made
    _, claims = bought_gift_with_claims(site, ["小王", "小张", "小赵"], quantity=3)
    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    owner.page.goto(site.base_url + "/admin/shipping/packing-list")
    expect(owner.page.locator(f"[data-claim='{claims[0]}']")).to_contain_text("广州市")

    bad = tmp_path / "bad.csv"
    bad.write_text(f"claim_id,carrier,tracking_no\n{claims[0]},顺丰,SF1\n{claims[1]},,SF2\nnope,顺丰,SF3\n")
    owner.page.goto(site.base_url + "/admin/shipping")
    owner.page.set_input_files("#upload-csv input[type=file]", str(bad))
    owner.page.click("#upload-csv button")
    expect(owner.page.locator("#report-errors li")).to_have_count(2)
    expect(owner.page.locator("#report-errors")).to_contain_text("第 3 行：快递公司 须为 1 到 32 个字")
    with site.database() as db:
        assert db.claims.count_documents({"_id": {"$in": claims}, "status": "shipped"}) == 0

    # One by one, by two operators at once: one wins, the other is told.
    staff = sign_in(people, site, "packer", invite(site, owner, "packer"))
    for operator in (owner, staff):
        operator.page.goto(site.base_url + "/admin/shipping")
        form = operator.page.locator(f"tr[data-claim='{claims[2]}'] .ship-form")
        form.locator("input[name=carrier]").fill("圆通" if operator is owner else "中通")
        form.locator("input[name=tracking_no]").fill(f"YT-{operator.name}")
    owner_form = owner.page.locator(f"tr[data-claim='{claims[2]}'] .ship-form button")
    staff_form = staff.page.locator(f"tr[data-claim='{claims[2]}'] .ship-form button")
    owner_form.click(no_wait_after=True)
    staff_form.click(no_wait_after=True)
    outcomes = []
    for operator in (owner, staff):
        operator.page.wait_for_load_state()
        expect(operator.page.locator("#done, #error")).to_have_count(1)
        outcomes.append(operator.page.locator("#done, #error").inner_text())
    assert sorted(outcomes) == ["只有已填写地址、未发货的礼物可以发货", "已标记发货"], outcomes
    ships = [e for e in audit_entries(site, "claim.ship") if e["target"] == f"claim:{claims[2]}"]
    assert len(ships) == 1

    good = tmp_path / "good.csv"
    rows = io.StringIO()
    csv.writer(rows).writerows([["claim_id", "carrier", "tracking_no"], [claims[0], "顺丰", "SF100"],
                                [claims[1], "顺丰", "SF200"]])
    good.write_text(rows.getvalue())
    owner.page.goto(site.base_url + "/admin/shipping")
    owner.page.set_input_files("#upload-csv input[type=file]", str(good))
    owner.page.click("#upload-csv button")
    expect(owner.page.locator("#report-applied")).to_have_text("已发货 2 件")
    owner.page.goto(site.base_url + "/admin/shipping?status=shipped")
    expect(owner.page.locator(f"tr[data-claim='{claims[0]}']")).to_contain_text("SF100")
    owner.page.locator(f"tr[data-claim='{claims[0]}'] button").click()
    expect(owner.page.locator("#done")).to_have_text("已确认送达")
    assert len([e for e in audit_entries(site, "claim.ship") if e["target"][6:] in claims]) == 3
    owner.screenshot("console-shipping")


def test_a_disabled_accounts_session_stops_at_once_and_a_post_needs_its_pages_xsrf_token(owner_made, people):
    site = owner_made
    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    temp = sign_in(people, site, "temp", invite(site, owner, "temp"))

    # The session cookie alone is not enough: without the page's XSRF token a post is refused.
    forged = temp.page.request.post(f"{site.base_url}/admin/catalogue/categories", form={"name": "伪造"},
                                    max_redirects=0)
    assert forged.status == 403 and "页面已过期" in forged.text()
    with site.database() as db:
        assert db.categories.count_documents({"name": "伪造"}) == 0

    owner.page.goto(site.base_url + "/admin/accounts")
    owner.page.locator("tr[data-account='temp'] form", has_text="停用").locator("button").click()
    expect(owner.page.locator("#done")).to_have_text("已停用账号")
    temp.page.goto(site.base_url + "/admin/orders")
    expect(temp.page).to_have_url(f"{site.base_url}/admin/login?next=%2Fadmin%2Forders")
    owner.page.goto(site.base_url + "/admin/audit")
    expect(owner.page.locator("#audit")).to_contain_text("account.disable")
    owner.screenshot("console-audit")


def test_gifts_are_looked_up_and_a_due_gift_is_drawn_again_once(owner_made, people):
    site = owner_made
    order_id = site.create_gift(method="full", open_number=5)
    site.join(site.sign_in("参与者"), order_id)
    owner = sign_in(people, site, OWNER, OWNER_PASSWORD)
    owner.page.goto(f"{site.base_url}/admin/gifts?order_id={order_id}")
    expect(owner.page.locator("#participants")).to_have_text("1")
    expect(owner.page.locator("#gift-status")).to_have_text("进行中")
    site.make_due(order_id)
    owner.page.click("#redraw button")
    expect(owner.page.locator("#done")).to_have_text("已尝试开奖")
    # The scheduler may have leased the draw first (then this page says 开奖中 until it finishes).
    deadline = time.monotonic() + 30
    while owner.page.locator("#gift-status").inner_text() != "已开奖" and time.monotonic() < deadline:
        time.sleep(0.2)
        owner.page.goto(f"{site.base_url}/admin/gifts?order_id={order_id}")
    expect(owner.page.locator("#gift-status")).to_have_text("已开奖")
    assert len([e for e in audit_entries(site, "gift.draw") if e["target"] == f"gift:{order_id}"]) == 1
    owner.page.goto(f"{site.base_url}/admin/gifts?order_id=ffffffffffffffffffffffff")
    expect(owner.page.locator("#no-gift")).to_be_visible()
    # The bearer-token API's actions are in the audit log too, as "api-token".
    assert any(e["who"] == "api-token" and e["target"] == f"gift:{order_id}"
               for e in audit_entries(site, "gift.create"))
