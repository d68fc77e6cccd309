"""The gift pages in a real browser: joining, waiting live, results, the proof and the sender's
view, against a real server process in development mode."""
import json
import re
import time
from datetime import datetime

from playwright.sync_api import expect

from tests.pages.browser import in_seconds


def test_the_landing_page_links_the_demo_gifts(site, people):
    visitor = people(site, "访客", signed_in=False).open("/")
    links = visitor.page.locator(".demo-link")
    expect(links).to_have_count(3)
    expect(links.nth(1)).to_contain_text("满3人开奖")
    visitor.screenshot("landing")


def test_two_people_fill_a_two_seat_gift_and_both_waiting_pages_turn_into_results(site, people):
    order_id = site.create_gift(method="full", open_number=2, items=[{"name": "蓝牙耳机"}],
                                wish="凑满两个人就开奖")
    alice = people(site, "阿丽", signed_in=False).open(f"/gift/{order_id}")
    # Development sign-in through the page's form.
    alice.page.fill("#name", "阿丽")
    alice.screenshot("signin")
    alice.page.click("text=进入")
    expect(alice.page.locator(".btn-join")).to_be_visible()
    expect(alice.page.locator(".card__info")).to_have_text("发起一个抽奖，满2人开奖")
    expect(alice.page.locator(".card__name")).to_have_text("小红")
    alice.screenshot("join")
    alice.page.click(".btn-join")
    expect(alice.page.locator("#progress")).to_have_text("1/2 人已参与")
    expect(alice.page).to_have_url(f"{site.base_url}/gift/{order_id}/wait")
    expect(alice.page.locator("#conn")).to_have_attribute("data-state", "open")
    alice.mark_document()
    alice.screenshot("wait-full")

    bob = people(site, "鲍勃").open(f"/gift/{order_id}")
    bob.page.click(".btn-join")
    bob.mark_document()
    # Bob's join takes the last seat: the draw runs and both pages show their results.
    outcomes = {}
    for person in (alice, bob):
        expect(person.page.locator("#outcome[data-outcome=won], #outcome[data-outcome=lost]")).to_be_visible()
        expect(person.page).to_have_url(f"{site.base_url}/gift/{order_id}/result")
        assert person.same_document(), f"{person.name}'s page reloaded"
        outcomes[person.name] = person.page.locator("#outcome").get_attribute("data-outcome")
    assert sorted(outcomes.values()) == ["lost", "won"]
    winner, loser = (alice, bob) if outcomes["阿丽"] == "won" else (bob, alice)
    expect(winner.page.locator(".prize__name")).to_have_text("蓝牙耳机")
    expect(winner.page.locator("#claim-form")).to_be_visible()
    masked = "阿*" if winner is alice else "鲍*"
    for person in (alice, bob):
        expect(person.page.locator("#winners .person__name")).to_have_text([masked])
    winner.screenshot("result-won")
    loser.screenshot("result-lost")

    # The proof, recomputed in the browser, matches; the winner finds themselves in it.
    winner.page.click("#proof-link")
    expect(winner.page.locator("#verdict")).to_have_attribute("data-result", "match")
    expect(winner.page.locator(".check--ok")).to_have_count(11)  # with the numbers, receipt and beacon checks
    expect(winner.page.locator(".proof__winners .proof__mine")).to_contain_text("你")
    winner.screenshot("proof")


def test_a_tampered_proof_shows_a_mismatch(site, people):
    order_id = site.create_gift(method="full", open_number=1, items=[{"name": "保温杯"}])
    site.join(site.sign_in("小刚"), order_id)
    visitor = people(site, "访客", signed_in=False)
    expect_finished(site, order_id)

    def tamper(route):
        proof = route.fetch().json()
        proof["seed"] = "00" * 32
        route.fulfill(status=200, content_type="application/json", body=json.dumps(proof))

    visitor.page.route(f"**/api/v1/gifts/{order_id}/proof", tamper)
    visitor.open(f"/gift/{order_id}/proof")
    expect(visitor.page.locator("#verdict")).to_have_attribute("data-result", "mismatch")
    expect(visitor.page.locator(".check--fail[data-check=commitment]")).to_be_visible()


def expect_finished(site, order_id: str, timeout: float = 15.0) -> None:
    key = site.sign_in("旁观者")
    deadline = time.monotonic() + timeout
    while site.gift(key, order_id)["gift"]["status"] != "finished":
        assert time.monotonic() < deadline, "the gift did not open"
        time.sleep(0.1)


def test_a_timed_gift_counts_down_to_zero_and_shows_the_result(site, people):
    open_at = in_seconds(7)
    order_id = site.create_gift(method="timed", open_at=open_at, items=[{"name": "月饼礼盒"}],
                                wish="中秋快乐")
    carol = people(site, "小卡").open(f"/gift/{order_id}")
    expect(carol.page.locator(".card__info")).to_contain_text("开奖")
    carol.page.click(".btn-join")
    countdown = carol.page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^00:0\d$"))
    carol.mark_document()
    carol.page.evaluate("""() => {
        window.seen = [];
        new MutationObserver(() => {
            const countdown = document.getElementById('countdown');
            if (countdown && window.seen.at(-1) !== countdown.textContent) window.seen.push(countdown.textContent);
        }).observe(document.getElementById('app'), {subtree: true, childList: true, characterData: true});
    }""")
    carol.screenshot("wait-timed")
    expect(carol.page.locator("#outcome")).to_have_attribute("data-outcome", "won", timeout=20000)
    expect(carol.page.locator(".prize__name")).to_have_text("月饼礼盒")
    assert carol.same_document()
    # The countdown ticked down, never up, until the result replaced it; the server opened the
    # gift no earlier than due.
    seen = carol.page.evaluate("window.seen")
    assert len(seen) >= 2 and seen == sorted(set(seen), reverse=True), seen
    gift = site.gift(site.sign_in("小卡"), order_id)["gift"]
    assert datetime.fromisoformat(gift["opened_at"]) >= datetime.fromisoformat(gift["open_at"])


def test_the_join_page_of_an_opened_gift_goes_straight_to_the_result(site, people):
    order_id = site.create_gift(method="full", open_number=1, items=[{"name": "电影票"}])
    site.join(site.sign_in("小明明"), order_id)
    expect_finished(site, order_id)
    latecomer = people(site, "迟到的人").open(f"/gift/{order_id}")
    expect(latecomer.page).to_have_url(f"{site.base_url}/gift/{order_id}/result")
    expect(latecomer.page.locator("#outcome")).to_have_attribute("data-outcome", "absent")
    expect(latecomer.page.locator(".btn-join")).to_have_count(0)
    expect(latecomer.page.locator("#winners .person__name")).to_have_text(["小*明"])
    expect(latecomer.page.locator("#winners .person__item")).to_have_text(["电影票"])


def test_the_sender_sees_joins_live_and_can_open_early(site, people):
    order_id = site.create_gift(method="full", open_number=3, items=[{"name": "红包"}, {"name": "咖啡券"}],
                                wish="三人成团")
    sender = people(site, "小红").open(f"/gift/{order_id}")
    expect(sender.page).to_have_url(f"{site.base_url}/gift/{order_id}/mine")
    expect(sender.page.locator("#progress")).to_have_text("0/3 人已参与")
    expect(sender.page.locator("#open-early")).to_have_count(0)
    sender.mark_document()
    for name in ("甲乙丙", "丁"):
        site.join(site.sign_in(name), order_id)
    expect(sender.page.locator("#progress")).to_have_text("2/3 人已参与")
    expect(sender.page.locator("#participants .person__name")).to_have_text(["丁", "甲乙丙"])
    sender.screenshot("mine")
    sender.page.click("#open-early")
    expect(sender.page.locator("#open-early")).to_contain_text("确认")
    sender.page.click("#open-early")
    expect(sender.page.locator("#gift-status")).to_have_text("已开奖")
    expect(sender.page.locator("#winners .person")).to_have_count(2)
    expect(sender.page.locator("#participants .person__tag--won")).to_have_count(2)
    assert sender.same_document()
    sender.screenshot("mine-opened")


def test_a_direct_gift_gives_the_item_at_once(site, people):
    order_id = site.create_gift(method="direct", items=[{"name": "红包封面"}, {"name": "咖啡券"}])
    dora = people(site, "朵拉").open(f"/gift/{order_id}")
    expect(dora.page.locator(".card__info")).to_have_text("发起一个抽奖，直接送礼")
    dora.page.click(".btn-join")
    expect(dora.page.locator("#outcome")).to_have_attribute("data-outcome", "won")
    expect(dora.page.locator(".prize__name")).to_have_text("红包封面")
    expect(dora.page.locator("#winners .person__name")).to_have_text(["朵*"])


def test_a_tiered_pass_phrase_gift_shows_its_tiers_asks_for_the_phrase_and_names_the_tier_won(site, people):
    order_id = site.create_gift(method="full", open_number=1, pass_phrase="芝麻开门 ABC", items=[
        {"name": "保温杯", "tier": 2}, {"name": "空气净化器", "tier": 1}, {"name": "保温杯", "tier": 2}])
    guest = people(site, "阿口").open(f"/gift/{order_id}")
    expect(guest.page.locator("#tiers .tiers__row")).to_have_text(["一等奖空气净化器×1", "二等奖保温杯×2"])
    expect(guest.page.locator("#pass-phrase")).to_be_visible()
    guest.page.click(".btn-join")  # no phrase yet: the page asks for it, nothing is sent
    expect(guest.page.locator("#toast")).to_have_text("请输入口令")
    guest.allow_errors("403")  # the wrong phrase's answer
    guest.page.fill("#pass-phrase", "芝麻关门")
    guest.page.click(".btn-join")
    expect(guest.page.locator("#toast")).to_have_text("口令不正确")
    guest.screenshot("join-pass-phrase")
    # The phrase as typed on a phone: full-width letters, other case, spaces around.
    guest.page.fill("#pass-phrase", " 芝麻开门 ａｂｃ ")
    guest.page.click(".btn-join")
    # The one seat is taken: the gift opens and the only participant wins the first tier's item.
    expect(guest.page.locator("#outcome")).to_have_attribute("data-outcome", "won")
    expect(guest.page.locator(".prize__name")).to_have_text("一等奖：空气净化器")
    expect(guest.page.locator("#winners .person__item")).to_have_text(["一等奖：空气净化器"])
    guest.screenshot("result-tier")


def test_a_pass_phrase_being_typed_survives_a_live_update_from_another_joiner(site, people):
    order_id = site.create_gift(method="full", open_number=3, pass_phrase="芝麻开门")
    guest = people(site, "打字的人").open(f"/gift/{order_id}")
    expect(guest.page.locator("#conn")).to_have_attribute("data-state", "open")
    guest.page.fill("#pass-phrase", "芝麻")
    # Someone else joins meanwhile: the socket's progress redraws the join view.
    site.join(site.sign_in("别人"), order_id, pass_phrase="芝麻开门")
    expect(guest.page.locator(".card__items")).to_have_text("共 1 份礼物 · 已有 1 人参与")
    expect(guest.page.locator("#pass-phrase")).to_have_value("芝麻")
    expect(guest.page.locator("#pass-phrase")).to_be_focused()
    guest.page.locator("#pass-phrase").press_sequentially("开门")
    guest.page.click(".btn-join")
    expect(guest.page).to_have_url(re.compile(f"/gift/{order_id}/wait$"))
