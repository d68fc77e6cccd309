"""Claims in the domain, against the real database: only the winner claims, with a checked address
they may change until the item ships and never after; the operator ships a claim once however
many race; a prize left unclaimed past its deadline expires, and a bought one is registered for
refund once; the sender sees who won (masked) but never where it goes."""
import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from lottery import clock
from lottery.claims import Claims, clean_address
from lottery.notifications import Notifications
from lottery.errors import (ClaimExpired, ClaimLocked, ClaimNotFound, Forbidden, InvalidInput, MissingParams, NotWinner,
                            WrongClaimState)
from lottery.storage import claims as claim_store
from lottery.storage import joins
from tests.gifts import make_due, make_gift
from tests.shop import ADDRESS, check_money, give_address, listed, paid_gift
from tests.waiting import until


async def direct_gift_won(gifts, items: int = 1, joiners: int = 1) -> tuple[str, list[str]]:
    """A direct gift (the operator's, no order) and its first `joiners` recipients, each of whom
    won an item the moment they joined. (order id, their member ids)"""
    gift = await make_gift(gifts, "direct", joiners=joiners, items=items, prefix="o_winner")
    return gift["_id"], [await gifts.accounts.ensure_member(f"o_winner{i}") for i in range(joiners)]


async def claim_id_of(claims: Claims, gifts, order_id: str, member_id: str) -> str:
    return (await give_address(claims, gifts, order_id, member_id))["claim_id"]


# -- who claims ------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_only_the_winner_of_a_drawn_gift_can_claim_and_only_once_it_is_drawn(db, gifts, drawer, claims):
    gift = await make_gift(gifts, "full", joiners=2, items=1, open_number=2)
    a, b = [await gifts.accounts.ensure_member(f"o_joiner{i}") for i in range(2)]
    with pytest.raises(NotWinner):  # not drawn yet
        await give_address(claims, gifts, gift["_id"], a)
    await make_due(db, gift["_id"])
    assert await drawer().sweep() == 1
    [winner] = (await db.gifts.find_one({"_id": gift["_id"]}))["draw"]["winners"]
    loser = b if winner == a else a
    for someone in (loser, gift["sender_id"], await gifts.accounts.ensure_member("o_stranger")):
        with pytest.raises(NotWinner):
            await give_address(claims, gifts, gift["_id"], someone)
    assert await db.claims.count_documents({"status": "claimed"}) == 0
    claimed = await give_address(claims, gifts, gift["_id"], winner)
    assert claimed["status"] == "claimed" and claimed["address"] == ADDRESS


@pytest.mark.gen_test(timeout=60)
async def test_a_winners_claim_met_before_the_finish_opens_soon_after_it_not_a_lease_later(db, gifts, drawer, claims):
    gift = await make_gift(gifts, "full", joiners=2, items=1, open_number=2)
    await make_due(db, gift["_id"])
    # A draw that stops just before its finish: the follow-ups' records are written, the gift is
    # still drawing, and the claims sweep (a 60 s lease) takes its record meanwhile.
    stalled = asyncio.ensure_future(drawer(stall="before_finish", lease=timedelta(seconds=1)).sweep())
    await until(lambda: db.outbox.find_one({"_id": f"claims:{gift['_id']}"}))
    assert await claims.sweep() == 0
    assert (await db.outbox.find_one({"_id": f"claims:{gift['_id']}"}))["status"] == "taken"
    stalled.cancel()
    resumed = drawer()
    await until(resumed.sweep)  # once the stalled lease lapses, another draw finishes the gift
    # The claim opens at a sweep seconds after the finish, not when the record's lease ends.
    assert await until(claims.sweep, timeout=20) == 1
    assert await db.claims.count_documents({"order_id": gift["_id"]}) == 1


@pytest.mark.gen_test(timeout=60)
async def test_only_a_direct_gifts_recipient_can_claim_the_item_they_received(gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts, items=2)
    with pytest.raises(NotWinner):
        await give_address(claims, gifts, order_id, await gifts.accounts.ensure_member("o_stranger"))
    claimed = await give_address(claims, gifts, order_id, winner)
    assert (claimed["claim_id"], claimed["item_index"]) == (f"{order_id}:0", 0)


@pytest.mark.gen_test(timeout=60)
async def test_the_winner_reads_their_claim_before_it_is_opened_as_it_will_be_opened(gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    gift = await gifts.get(order_id)
    before = await claims.of_member(gift, await joins.get(gifts.db, order_id, winner), winner)
    assert before["status"] == "unclaimed" and "address" not in before
    assert await claims.sweep() == 1
    assert await claims.sweep() == 0  # opened once
    assert await claims.of_member(gift, await joins.get(gifts.db, order_id, winner), winner) == before


# -- the address -----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_an_address_can_be_changed_until_the_item_ships_and_never_after(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    first = await give_address(claims, gifts, order_id, winner)
    moved = await give_address(claims, gifts, order_id, winner, {**ADDRESS, "cityName": "深圳市"})
    assert moved["claim_id"] == first["claim_id"] and moved["address"]["cityName"] == "深圳市"
    await claims.ship(first["claim_id"], "顺丰", "SF1")
    with pytest.raises(ClaimLocked):
        await give_address(claims, gifts, order_id, winner, {**ADDRESS, "cityName": "北京市"})
    await claims.delivered(first["claim_id"])
    with pytest.raises(ClaimLocked):
        await give_address(claims, gifts, order_id, winner, {**ADDRESS, "cityName": "北京市"})
    assert (await claim_store.get(db, first["claim_id"]))["address"]["cityName"] == "深圳市"


@pytest.mark.gen_test(timeout=60)
async def test_ten_racing_claims_by_the_winner_make_one_claim_with_one_of_their_addresses(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    addresses = [{**ADDRESS, "detailInfo": f"{i} 号"} for i in range(10)]
    answers = await asyncio.gather(*(give_address(claims, gifts, order_id, winner, a) for a in addresses))
    assert {a["status"] for a in answers} == {"claimed"}
    [claim] = await db.claims.find({"order_id": order_id}).to_list()
    assert claim["address"]["detailInfo"] in {a["detailInfo"] for a in addresses}


@pytest.mark.parametrize("phone", ["13800138000", "19912345678", "020-12345678", "07551234567", "010-1234567-89"])
def test_a_mainland_mobile_or_landline_number_is_accepted(phone):
    assert clean_address({**ADDRESS, "telNumber": f" {phone} "}).telNumber == phone


@pytest.mark.parametrize("phone", ["12345", "12800138000", "1380013800", "138001380001", "+8613800138000",
                                   "138-0013-8000", "2012345678", "abcdefghijk",
                                   "１３８００１３８０００", "13８00138000", "١٣٨٠٠١٣٨٠٠٠"])
def test_a_phone_number_that_is_not_mainland_chinas_is_refused(phone):
    # ASCII digits only, as the OpenAPI pattern says: full-width or Arabic-Indic digits are not
    # a number a courier can dial.
    with pytest.raises(InvalidInput):
        clean_address({**ADDRESS, "telNumber": phone})


@pytest.mark.parametrize("code, accepted", [("510000", True), ("", True), ("5100", False), ("5100000", False),
                                            ("51000a", False), ("５１００００", False), ("٥١٠٠٠٠", False)])
def test_a_postal_code_is_six_digits_or_none(code, accepted):
    if accepted:
        assert clean_address({**ADDRESS, "postalCode": code}).postalCode == code
    else:
        with pytest.raises(InvalidInput):
            clean_address({**ADDRESS, "postalCode": code})


@pytest.mark.parametrize("change, error", [
    ({"userName": ""}, MissingParams), ({"userName": None}, MissingParams), ({"userName": "   "}, InvalidInput),
    ({"detailInfo": "x" * 121}, InvalidInput), ({"detailInfo": "1号\u0000楼"}, InvalidInput),
    ({"cityName": 5}, InvalidInput), ({"telNumber": {"$ne": None}}, InvalidInput)])
def test_every_address_field_is_a_short_clean_string(change, error):
    assert clean_address({**ADDRESS, "detailInfo": "x" * 120}).detailInfo == "x" * 120
    with pytest.raises(error):
        clean_address({**ADDRESS, **change})


# -- the operator ----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_a_claim_ships_once_when_two_operators_race(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    claim_id = await claim_id_of(claims, gifts, order_id, winner)
    operators = [Claims(db), Claims(db)]
    answers = await asyncio.gather(*(o.ship(claim_id, "顺丰", f"SF{i}") for i, o in enumerate(operators)),
                                   return_exceptions=True)
    shipped = [a for a in answers if isinstance(a, dict)]
    assert len(shipped) == 1 and [type(a) for a in answers if not isinstance(a, dict)] == [WrongClaimState]
    stored = await claim_store.get(db, claim_id)
    assert stored["status"] == "shipped" and stored["tracking_no"] == shipped[0]["tracking_no"]
    assert await db.outbox.count_documents({"message": "prize_shipped", "member_id": winner}) == 1


@pytest.mark.gen_test(timeout=60)
async def test_only_a_claimed_item_ships_and_only_a_shipped_one_is_delivered(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    await claims.sweep()
    claim_id = f"{order_id}:0"
    with pytest.raises(WrongClaimState):
        await claims.ship(claim_id, "顺丰", "SF1")  # no address yet
    await give_address(claims, gifts, order_id, winner)
    with pytest.raises(WrongClaimState):
        await claims.delivered(claim_id)
    await claims.ship(claim_id, "顺丰", "SF1")
    assert (await claims.delivered(claim_id))["status"] == "delivered"
    with pytest.raises(WrongClaimState):
        await claims.ship(claim_id, "顺丰", "SF2")
    with pytest.raises(ClaimNotFound):
        await claims.ship("f" * 24 + ":0", "顺丰", "SF1")
    with pytest.raises(InvalidInput):
        await claims.ship("nope", "顺丰", "SF1")


@pytest.mark.gen_test(timeout=60)
async def test_the_winner_sees_when_their_item_was_claimed_shipped_and_delivered(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    claimed = await give_address(claims, gifts, order_id, winner)
    shipped = await claims.ship(claimed["claim_id"], "顺丰", "SF1")
    delivered = await claims.delivered(claimed["claim_id"])
    assert claimed["claimed_at"] and shipped["shipped_at"] and delivered["delivered_at"]
    assert claimed["claimed_at"] <= shipped["shipped_at"] <= delivered["delivered_at"]
    [mine] = await claims.of_winner(winner)
    assert (mine["claimed_at"], mine["shipped_at"], mine["delivered_at"]) == (
        claimed["claimed_at"], shipped["shipped_at"], delivered["delivered_at"])


@pytest.mark.gen_test(timeout=60)
async def test_the_shipping_list_has_addresses_in_full_and_later_lists_mask_them(db, gifts, claims):
    order_id, winners = await direct_gift_won(gifts, items=2, joiners=2)
    first, second = [await claim_id_of(claims, gifts, order_id, w) for w in winners]
    await claims.ship(second, "顺丰", "SF1")
    [listed_] = (await claims.page("claimed"))["claims"]
    assert listed_["claim_id"] == first and listed_["address"] == ADDRESS
    [shipped] = (await claims.page("shipped"))["claims"]
    assert shipped["address"]["telNumber"] == "*******8000" and shipped["address"]["userName"] == "张*"
    assert ADDRESS["detailInfo"] not in str(shipped) and ADDRESS["telNumber"] not in str(shipped)
    with pytest.raises(InvalidInput):
        await claims.page("lost")


@pytest.mark.gen_test(timeout=60)
async def test_the_operators_list_comes_fifty_at_a_time_and_the_cursor_reaches_every_claim_once(db, gifts, claims):
    gift = await make_gift(gifts, "direct", items=51)
    await claim_store.open_many(db, [claims.new_claim(gift, i, f"m{i}", clock.utcnow(), []) for i in range(51)])
    first = await claims.page("unclaimed")
    assert len(first["claims"]) == 50 and first["next_cursor"] == first["claims"][-1]["claim_id"]
    rest = await claims.page("unclaimed", first["next_cursor"])
    assert len(rest["claims"]) == 1 and rest["next_cursor"] is None
    seen = [c["claim_id"] for c in first["claims"] + rest["claims"]]
    assert len(set(seen)) == 51 and seen == sorted(seen)
    with pytest.raises(InvalidInput):
        await claims.page("unclaimed", "not a claim id")


# -- the sender ------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_the_sender_sees_who_won_masked_and_never_the_address_or_tracking_number(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    claim_id = await claim_id_of(claims, gifts, order_id, winner)
    await claims.ship(claim_id, "顺丰", "SF123")
    gift = await gifts.get(order_id)
    [seen] = await claims.of_gift(gift, gift["sender_id"])
    assert (seen["status"], seen["carrier"], seen["tracking_no"], seen["winner"]) == ("shipped", "顺丰", None, "微**户")
    assert "address" not in seen and "SF123" not in str(seen) and ADDRESS["telNumber"] not in str(seen)
    with pytest.raises(Forbidden):
        await claims.of_gift(gift, winner)


@pytest.mark.gen_test(timeout=60)
async def test_a_gifts_claims_as_read_for_its_sender_never_carry_an_address(db, gifts, claims):
    order_id, winners = await direct_gift_won(gifts, items=2, joiners=2)
    for winner in winners:
        await give_address(claims, gifts, order_id, winner)
    found = await claim_store.of_gift(db, order_id)
    assert [c["item_index"] for c in found] == [0, 1] and all(c["status"] == "claimed" for c in found)
    assert all("address" not in c for c in found)
    assert all("address" in c for c in await claim_store.page(db, "claimed", "", 10))  # the shipping list has them


@pytest.mark.gen_test(timeout=60)
async def test_an_unclaimed_prize_is_reminded_once_and_then_leaves_the_reminder_list(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    await claims.sweep()
    await db.claims.update_one({"order_id": order_id}, {"$set": {"remind_at": clock.utcnow()}})
    assert [c["_id"] for c in await claim_store.to_remind(db, clock.utcnow(), 10)] == [f"{order_id}:0"]
    await claims.sweep()
    await claims.sweep()
    assert await db.outbox.count_documents({"kind": "message", "message": "claim_reminder"}) == 1
    assert await claim_store.to_remind(db, clock.utcnow() + timedelta(days=30), 10) == []


@pytest.mark.gen_test(timeout=60)
async def test_a_prize_claimed_or_expired_before_its_reminder_is_never_reminded_and_leaves_the_reminder_list(
        db, gifts, claims):
    order_id, [claimer, idler] = await direct_gift_won(gifts, items=2, joiners=2)
    await claims.sweep()
    await give_address(claims, gifts, order_id, claimer)
    await db.claims.update_many({"order_id": order_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    expirations = REGISTRY.get_sample_value("gift_lottery_claims_total", {"transition": "expired"}) or 0
    await claims.sweep()  # the idler's prize expires, counted once
    assert {c["winner_id"]: c["status"] for c in await claim_store.of_gift(db, order_id)} == {
        claimer: "claimed", idler: "expired"}
    assert await claim_store.to_remind(db, clock.utcnow() + timedelta(days=30), 10) == []
    await claims.sweep()
    assert await db.outbox.count_documents({"kind": "message", "message": "claim_reminder"}) == 0
    assert REGISTRY.get_sample_value("gift_lottery_claims_total", {"transition": "expired"}) == expirations + 1


# -- the deadline ----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_an_expired_claim_cannot_be_claimed_and_its_bought_item_is_registered_for_refund_once(
        db, gifts, orders, pay_fake, claims):
    tea = await listed(db, "奶茶券", 1800, 10)
    buyer = await gifts.accounts.ensure_member("o_buyer")
    order_id = await paid_gift(orders, pay_fake, buyer, (tea, 2), method="direct")
    winner = await gifts.accounts.ensure_member("o_winner")
    await gifts.join(order_id, winner)
    await claims.sweep()
    await db.claims.update_many({"order_id": order_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    with pytest.raises(ClaimExpired):  # past its deadline, even before the sweep marks it
        await give_address(claims, gifts, order_id, winner)
    await asyncio.gather(*(Claims(db).sweep() for _ in range(3)))  # several sweeps racing
    # A sweep that stopped after registering the refund, before noting it: run again.
    await db.claims.update_one({"_id": f"{order_id}:0"}, {"$set": {"refund_pending": True}})
    await claims.sweep()
    claim = await claim_store.get(db, f"{order_id}:0")
    assert claim["status"] == "expired" and "refund_pending" not in claim
    order = (await db.gifts.find_one({"_id": order_id}))["order"]
    assert list(order["refund_items"]) == ["0"] and order["refund_items"]["0"]["price"] == 1800
    assert order["refund_unbatched"] == 1
    with pytest.raises(ClaimExpired):
        await give_address(claims, gifts, order_id, winner)
    await check_money(db)


@pytest.mark.gen_test(timeout=60)
async def test_a_claim_given_an_address_in_time_never_expires(db, gifts, claims):
    order_id, [winner] = await direct_gift_won(gifts)
    claim_id = await claim_id_of(claims, gifts, order_id, winner)
    await db.claims.update_one({"_id": claim_id}, {"$set": {"deadline_at": clock.utcnow() - timedelta(seconds=1)}})
    await claims.sweep()
    assert (await claim_store.get(db, claim_id))["status"] == "claimed"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("method", ["direct", "timed"])
async def test_the_reminder_reaches_a_winner_who_accepted_its_template_when_joining(db, gifts, drawer, claims, method):
    # The reminder goes to winners who have not claimed yet, so it can only rely on the templates
    # they accepted at the join (a claim's own come with the address, after the reminder's time).
    gift = await make_gift(gifts, method, items=1)
    winner = await gifts.accounts.ensure_member("o_accepts")
    await gifts.join(gift["_id"], winner, subscribed=["tpl_reminder"])
    if method == "timed":
        await make_due(db, gift["_id"])
        assert await drawer().sweep() == 1
    await claims.sweep()
    await db.claims.update_one({"order_id": gift["_id"]}, {"$set": {"remind_at": clock.utcnow()}})
    await claims.sweep()
    await Notifications(db, {"claim_reminder": "tpl_reminder"}).expand_messages()
    [entry] = await db.notifications.find({"kind": "claim_reminder"}).to_list()
    assert (entry["member_id"], entry["status"]) == (winner, "pending")
