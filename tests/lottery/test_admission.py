"""Admission in steps: racing joins of one gift go to the database together, and every rule
holds as it does one join at a time, across processes and against a draw."""
import asyncio
from collections import Counter

import pytest

from lottery import fairness
from lottery.accounts import Accounts
from lottery.errors import AlreadyJoined, GiftClosed, GiftFull, GiftOpened, NoItemsLeft
from lottery.gifts import Gifts
from lottery.storage.gifts import adopt_claimant_maps, claimants
from tests import beacons
from tests.gifts import make_gift
from tests.waiting import until


async def members(gifts: Gifts, prefix: str, n: int) -> list[str]:
    return [await gifts.accounts.ensure_member(f"{prefix}{i}") for i in range(n)]


async def race(gifts_by_process: list[Gifts], order_id: str, member_ids: list[str]) -> list:
    """Every member joins at once, the i-th through process i mod P."""
    return await asyncio.gather(*(gifts_by_process[i % len(gifts_by_process)].join(order_id, m)
                                  for i, m in enumerate(member_ids)), return_exceptions=True)


def other_process(db) -> Gifts:
    """The gift service as another server process has it: its own steps and its own guesses."""
    return Gifts(db, Accounts(db, None), beacons.receipt_key())


async def joined_at_least(db, order_id: str, count: int) -> bool:
    return (await db.gifts.find_one({"_id": order_id}))["joined_count"] >= count


async def sequences(db, order_id: str) -> list[int]:
    return sorted([j["sequence"] async for j in db.joins.find({"order_id": order_id})])


@pytest.mark.gen_test(timeout=60)
async def test_racing_joins_of_one_gift_are_admitted_together_in_few_steps(db, gifts):
    order_id = (await make_gift(gifts, "full", open_number=64))["_id"]
    joiners = await members(gifts, "o_racer", 64)
    answers = await race([gifts], order_id, joiners)
    assert all(a.state == "joined_waiting" for a in answers)
    assert gifts.admission.steps.steps <= 64 // 4  # at least four joins a step on average
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "ready" and gift["seats_left"] == 0 and len(gift["claimants"]) == 64
    # Each join's number is its seat: its place among the claimants.
    records = {j["member_id"]: j async for j in db.joins.find({"order_id": order_id})}
    assert [records[m]["sequence"] for m in claimants(gift)] == list(range(1, 65))
    for answer, member in zip(answers, joiners):
        assert answer.receipt["sequence"] == records[member]["sequence"]
        assert answer.receipt["participant"] == fairness.pseudonym(order_id, member)


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("method", ["full", "direct", "timed"])
async def test_two_processes_admitting_in_steps_on_one_gift_fill_it_exactly(db, gifts, method):
    capacity = 30
    items = [f"item{i}" for i in range(capacity)] if method == "direct" else 3
    order_id = (await make_gift(gifts, method, items=items, open_number=capacity))["_id"]
    joiners = await members(gifts, "o_proc", 90)
    processes = [gifts, other_process(db)]
    answers = await race(processes, order_id, joiners + joiners[:20])  # and 20 members twice
    accepted = [a for a in answers if not isinstance(a, BaseException)]
    refused = Counter(type(a) for a in answers if isinstance(a, BaseException))
    gift = await db.gifts.find_one({"_id": order_id})
    records = await db.joins.find({"order_id": order_id}).to_list()
    assert sum(p.admission.steps.steps for p in processes) < len(answers)
    if method == "timed":  # no cap: every member once
        assert len(accepted) == 90 and refused == {AlreadyJoined: 20}
        assert gift["joined_count"] == 90 and len(records) == 90
        assert await sequences(db, order_id) == list(range(1, 91))
        return
    full_error = NoItemsLeft if method == "direct" else GiftFull
    assert len(accepted) == capacity and set(refused) <= {full_error, AlreadyJoined}
    assert gift["joined_count"] == capacity and len(set(gift["claimants"])) == capacity == len(records)
    assert {r["member_id"] for r in records} == set(gift["claimants"])
    if method == "direct":  # each item once, to its claimant
        assert sorted(a.item["name"] for a in accepted) == sorted(items)
        assert {r["member_id"]: r["item_index"] for r in records} == gift["claimants"]
    else:
        assert await sequences(db, order_id) == list(range(1, capacity + 1))


@pytest.mark.gen_test(timeout=90)
async def test_steps_racing_a_draw_admit_exactly_the_participants_it_draws(db, gifts, drawer):
    draws = drawer()
    gift = await make_gift(gifts, "timed", items=5)
    order_id = gift["_id"]
    sender = gift["sender_id"]
    joiners = await members(gifts, "o_late", 80)
    processes = [gifts, other_process(db)]

    async def open_midway():  # while steps of both processes are under way
        await until(lambda: joined_at_least(db, order_id, 30), timeout=30, interval=0.005)
        await draws.open_early(order_id, sender)

    *answers, _ = await asyncio.gather(*(processes[i % 2].join(order_id, m) for i, m in enumerate(joiners)),
                                       open_midway(), return_exceptions=True)
    accepted = {m for m, a in zip(joiners, answers) if not isinstance(a, BaseException)}
    refusals = {type(a) for a in answers if isinstance(a, BaseException)}
    assert refusals <= {GiftOpened, GiftClosed} and len(accepted) >= 30  # refused as closed, never failed
    await draws.idle()
    proof = await draws.proof(order_id)
    assert not fairness.verify(proof, draws.beacon.chain)
    # Everyone told "joined" is drawn among, with the number on their receipt; nobody else is.
    drawn = dict(zip(proof["participants"], proof["sequences"]))
    assert set(drawn) == {fairness.pseudonym(order_id, m) for m in accepted}
    for member, answer in zip(joiners, answers):
        if member in accepted and answer.receipt is not None:
            assert drawn[answer.receipt["participant"]] == answer.receipt["sequence"]
    assert sorted(drawn.values()) == list(range(1, len(accepted) + 1))



async def gift_stored_with_a_claimant_list(db, gifts, prefix: str) -> tuple[str, list[str]]:
    """A full gift of 6 seats with two claimants, as an earlier version stored it (the
    claimants a list in seat order); the second one's join record never landed."""
    order_id = (await make_gift(gifts, "full", open_number=6))["_id"]  # open to the end
    earlier = await members(gifts, prefix, 2)
    for member_id in earlier:
        await gifts.join(order_id, member_id)
    await db.gifts.update_one({"_id": order_id}, {"$set": {"claimants": earlier}})
    await db.joins.delete_one({"order_id": order_id, "member_id": earlier[1]})
    return order_id, earlier


async def assert_seats_kept_and_given_on(db, gifts, order_id: str, earlier: list[str]) -> None:
    later = await members(gifts, f"o_later_{order_id}", 3)
    answers = await race([gifts], order_id, later + earlier)
    assert not any(isinstance(a, BaseException) for a in answers[:3]), answers
    seats = {m: a.receipt["sequence"] for m, a in zip(later, answers)}
    assert sorted(seats.values()) == [3, 4, 5]
    assert isinstance(answers[3], AlreadyJoined)
    assert not isinstance(answers[4], BaseException), answers[4]
    assert answers[4].receipt["sequence"] == 2  # its seat kept, its record written now
    assert claimants(await db.gifts.find_one({"_id": order_id})) == earlier + sorted(later, key=seats.get)


@pytest.mark.gen_test(timeout=60)
async def test_a_gift_stored_with_a_claimant_list_is_converted_at_startup_and_keeps_its_seats(db, gifts):
    order_id, earlier = await gift_stored_with_a_claimant_list(db, gifts, "o_startup")
    assert await adopt_claimant_maps(db) == 1
    assert await adopt_claimant_maps(db) == 0  # once
    assert (await db.gifts.find_one({"_id": order_id}))["claimants"] == {earlier[0]: 0, earlier[1]: 1}
    await assert_seats_kept_and_given_on(db, gifts, order_id, earlier)


@pytest.mark.gen_test(timeout=60)
async def test_a_gift_an_earlier_version_stores_during_a_rollout_is_converted_by_its_first_join(db, gifts):
    order_id, earlier = await gift_stored_with_a_claimant_list(db, gifts, "o_rollout")
    await assert_seats_kept_and_given_on(db, gifts, order_id, earlier)
