"""Prize tiers: a gift's items carry a tier; the first tier's items are drawn first, and the
proof covers the tiers. A gift without tiers is exactly as before."""
import copy
from datetime import timedelta

import pytest

from lottery import clock, fairness
from lottery.errors import InvalidInput
from lottery.gifts import GiftSpec, Item, public_view
from lottery.notifications import Notifications
from lottery.storage import joins
from tests.gifts import make_due, spec

PARTICIPANTS = 2_000  # enough that a draw among them picks every tier from a crowd


def tiered_spec(items: list[Item]) -> GiftSpec:
    return GiftSpec("o_sender", "timed", items, open_at=clock.utcnow() + timedelta(hours=1))


@pytest.mark.gen_test
async def test_tiered_items_are_kept_first_tier_first_and_shown_with_their_tier(gifts):
    gift = await gifts.create(tiered_spec([Item("杯子", tier=3), Item("耳机", tier=2), Item("手机", tier=1),
                                           Item("杯子", tier=3), Item("红包", tier=2, tier_name="二等奖")]))
    view = public_view(gift)
    assert [(i["name"], i["tier"]["rank"], i["tier"]["name"]) for i in view["items"]] == [
        ("手机", 1, "一等奖"), ("耳机", 2, "二等奖"), ("红包", 2, "二等奖"), ("杯子", 3, "三等奖"), ("杯子", 3, "三等奖")]


@pytest.mark.gen_test
async def test_a_gift_without_tiers_shows_no_tier_and_hashes_its_items_as_before(gifts, db, drawer):
    gift = await gifts.create(spec("timed", ["口红", "蓝牙耳机"]))
    assert all("tier" not in item for item in public_view(gift)["items"])
    await joins.restore(db, [(gift["_id"], f"m{i}") for i in range(3)], clock.utcnow())
    await db.gifts.update_one({"_id": gift["_id"]}, {"$set": {"joined_count": 3}})
    await make_due(db, gift["_id"])
    draws = drawer()
    await draws.open([gift["_id"]])
    proof = await draws.proof(gift["_id"])
    assert "tiers" not in proof
    # docs/fairness.md's published items hash of these two names.
    assert proof["items_hash"] == "fc84bf88d2a0551604e2a3e1d2df5acd6e8b9572081208a56a9801a27c3b9d0b"


@pytest.mark.gen_test
@pytest.mark.parametrize("items", [
    [Item("a", tier=1), Item("b")],  # some tiered, some not
    [Item("a", tier=0, tier_name="一等奖")],
    [Item("a", tier=11)],
    [Item("a", tier=1, tier_name="特等奖"), Item("b", tier=1, tier_name="一等奖")],  # one rank, two names
    [Item("a", tier=1, tier_name="奖" * 17)],
    [Item("a", tier=1, tier_name="   ")],
])
async def test_inconsistent_tiers_are_refused_and_nothing_is_stored(gifts, db, items):
    with pytest.raises(InvalidInput):
        await gifts.create(tiered_spec(items))
    assert await db.gifts.count_documents({}) == 0


@pytest.mark.gen_test(timeout=120)
async def test_two_thousand_participants_get_the_tiers_in_order_and_the_proof_verifies(gifts, db, drawer):
    items = [Item("空气净化器", tier=1), *[Item("蓝牙耳机", tier=2)] * 3, *[Item("保温杯", tier=3)] * 6]
    gift = await gifts.create(tiered_spec(list(reversed(items))))
    order_id = gift["_id"]
    # Set-up, not the subject: the joins written in bulk, numbered as joins number them.
    member_ids = [f"m{i:023d}" for i in range(PARTICIPANTS)]
    now = clock.utcnow()
    await joins.insert_many(db, [{**joins.new_join(order_id, m, now), "sequence": i + 1, "receipt": ""}
                                 for i, m in enumerate(member_ids)])
    await db.gifts.update_one({"_id": order_id}, {"$set": {"joined_count": PARTICIPANTS}})
    await make_due(db, order_id)
    draws = drawer()
    assert await draws.open([order_id]) == [order_id]
    finished = await db.gifts.find_one({"_id": order_id})
    winners = finished["draw"]["winners"]
    assert len(winners) == 10 and len(set(winners)) == 10
    tiers_won = [finished["items"][i]["tier"]["rank"] for i in range(len(winners))]
    assert tiers_won == [1, 2, 2, 2, 3, 3, 3, 3, 3, 3]

    proof = await draws.proof(order_id)
    assert len(proof["participants"]) == PARTICIPANTS
    assert proof["tiers"] == [[1, "一等奖"], *[[2, "二等奖"]] * 3, *[[3, "三等奖"]] * 6]
    assert fairness.verify(proof, draws.beacon.chain) == []
    # The tiers are in the proof's items hash: a proof whose tiers were swapped does not verify.
    forged = copy.deepcopy(proof)
    forged["tiers"][0], forged["tiers"][9] = forged["tiers"][9], forged["tiers"][0]
    assert fairness.verify(forged, draws.beacon.chain) != []
    # The winner of item 0 (the first tier) sees that tier in their view.
    me = (await gifts.look(order_id, winners[0]))[1]
    assert me["state"] == "won" and me["item"]["tier"] == {"rank": 1, "name": "一等奖"}


def test_the_tiered_test_vector_published_in_docs_fairness_md():
    tiers = [[1, "一等奖"], [2, "二等奖"], [2, "二等奖"]]
    items = ["手机", "耳机", "耳机"]
    assert fairness.items_hash(items, tiers) == "2886b1cdb4a831bd065e9cbdae0e268b3c343ddfb3e31f801cb79d2683c0bd81"
    seed = "65aa35ff1ca8e2dcffcced88e4f399d9541a08c69f0b04dfe26893f0e7ab1401"
    assert fairness.draw(seed, "order-kat", [f"p{i:03d}" for i in range(100)], items, tiers=tiers) == [77, 49, 70]


@pytest.mark.gen_test(timeout=30)
async def test_the_winners_message_names_the_tier_won(gifts, db, drawer):
    gift = await gifts.create(tiered_spec([Item("保温杯", tier=2), Item("空气净化器", tier=1)]))
    for i in range(2):
        await gifts.join(gift["_id"], await gifts.accounts.ensure_member(f"o_msg{i}"), subscribed=["tpl_won"])
    await make_due(db, gift["_id"])
    await drawer().open([gift["_id"]])
    notifications = Notifications(db, {"gift_won": "tpl_won"})
    assert await notifications.expand_opened_gifts() == 1
    await notifications.expand_pages()
    won = await db.notifications.find({"order_id": gift["_id"], "kind": "gift_won"}).to_list()
    assert sorted(entry["values"]["item"] for entry in won) == ["一等奖：空气净化器", "二等奖：保温杯"]
