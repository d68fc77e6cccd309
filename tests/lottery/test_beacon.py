"""The beacon a draw mixes in: the first round after the freeze, published before that round
exists, taken only with a signature that verifies, through relays that fail in every way drand's
can (the local stand-in, fakes/beacon.py, with its own key and drand's HTTP API)."""
import time

import pytest

from fakes.beacon import FakeBeacon
from lottery import clock, drand, fairness
from lottery.beacon import Beacon
from lottery.notifications import Notifications
from relays.drand import relay_fetcher
from tests.gifts import make_due, make_gift
from tests.waiting import until

PERIOD = 0.25


@pytest.fixture
def fake():
    """A stand-in chain of this test's own, whose relays' faults it may set."""
    beacon = FakeBeacon(period=PERIOD).start()
    yield beacon
    beacon.stop()


def beacon_of(fake: FakeBeacon, timeout: float = 1.0, **kwargs) -> Beacon:
    return Beacon(fake.chain, fake.relay_urls, relay_fetcher(timeout), **kwargs)


async def drawn(gifts, db, drawer, beacon: Beacon, beacon_wait: float = 3.0) -> tuple[str, object]:
    order_id = (await make_gift(gifts, "timed", 6, 2))["_id"]
    await make_due(db, order_id)
    draws = drawer(beacon=beacon, beacon_wait=beacon_wait)
    await draws.open([order_id])
    return order_id, draws


@pytest.mark.gen_test
async def test_a_round_not_out_yet_is_waited_for_and_comes_verified(fake):
    beacon = beacon_of(fake)
    ahead = fake.latest_round() + 3
    got = await beacon.get(ahead, wait=5)
    assert time.time() >= fake.chain.round_time(ahead)
    assert got.round == ahead and drand.verify(fake.chain, ahead, got.signature)
    assert got.randomness == drand.randomness(fake.sign(ahead))


@pytest.mark.gen_test
async def test_a_round_further_ahead_than_the_wait_is_not_waited_for(fake):
    assert await beacon_of(fake).get(fake.latest_round() + 100, wait=0.5) is None


@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["down", "slow", "bad_signature"])
async def test_a_relay_that_is_down_slow_or_lying_is_passed_over_for_the_next(fake, fault):
    fake.set_fault(0, fault)
    fake.slow_seconds = 3.0
    round_ = fake.latest_round()
    got = await beacon_of(fake, timeout=0.5).get(round_, wait=5)
    assert got is not None and got.signature == fake.sign(round_)
    assert fake.requests[0] == 1 and fake.requests[1] == 1  # asked the first, then the second


@pytest.mark.gen_test
async def test_no_round_comes_when_every_relay_serves_a_bad_signature(fake):
    for index in range(3):
        fake.set_fault(index, "bad_signature")
    assert await beacon_of(fake).get(fake.latest_round(), wait=0.6) is None
    assert min(fake.requests.values()) >= 2  # retried with backoff until the wait ran out


@pytest.mark.gen_test
async def test_a_draw_uses_the_first_round_after_its_freeze_and_its_proof_verifies(db, gifts, drawer, fake):
    order_id, draws = await drawn(gifts, db, drawer, beacon_of(fake))
    proof = await draws.proof(order_id)
    assert proof["version"] == 2 and fairness.verify(proof, fake.chain) == []
    frozen_at = clock.parse_time(proof["frozen_at"]).timestamp()
    assert proof["beacon"]["round"] == fake.chain.first_round_after(frozen_at)
    assert fake.chain.round_time(proof["beacon"]["round"]) > frozen_at
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["freeze"] == {"participants_hash": proof["participants_hash"], "participant_count": 6,
                              "frozen_at": proof["frozen_at"], "beacon_round": proof["beacon"]["round"]}
    # The proof of the same draw under another round's randomness names other winners (or
    # fails): the beacon is in the key.
    forged = {**proof, "beacon": {**proof["beacon"], "round": proof["beacon"]["round"] + 1}}
    assert fairness.verify(forged, fake.chain) != []


@pytest.mark.gen_test
async def test_a_draw_whose_relays_are_all_down_waits_drawing_and_finishes_when_one_is_back(
        db, gifts, drawer, fake):
    for index in range(3):
        fake.set_fault(index, "down")
    order_id, draws = await drawn(gifts, db, drawer, beacon_of(fake))
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "drawing" and gift["freeze"]["beacon_round"] >= 1
    assert clock.as_utc(gift["lease_until"]) <= clock.utcnow()  # handed back to the next sweep
    assert await db.draw_results.count_documents({"_id": order_id}) == 0
    fake.set_fault(2, None)
    assert await draws.sweep() == 1
    proof = await draws.proof(order_id)
    assert proof["beacon"]["status"] == "verified" and fairness.verify(proof, fake.chain) == []
    assert proof["beacon"]["round"] == gift["freeze"]["beacon_round"]  # the round the freeze named


@pytest.mark.gen_test(timeout=60)
async def test_what_follows_a_draw_is_recorded_while_its_round_is_awaited_and_happens_once_after_the_finish(
        db, gifts, drawer, fake, claims):
    for index in range(3):
        fake.set_fault(index, "down")
    order_id, draws = await drawn(gifts, db, drawer, beacon_of(fake))
    # Its messages and its winners' claims are recorded while the round is awaited (the database
    # is idle meanwhile); the copy of its outcomes only once the round is there.
    records = {r["_id"]: r["status"] async for r in db.outbox.find({"order_id": order_id})}
    assert records == {f"opened:{order_id}": "pending", f"claims:{order_id}": "pending"}
    # Their consumers wait for the finish.
    notifications = Notifications(db)
    assert await claims.sweep() == 0 and await notifications.expand_opened_gifts() == 0
    assert await db.claims.count_documents({"order_id": order_id}) == 0
    fake.set_fault(2, None)
    assert await draws.sweep() == 1
    # Then each happens once, seconds after the finish (not a lease after the early look).
    assert await until(claims.sweep, timeout=20) == 2
    assert await until(notifications.expand_opened_gifts, timeout=20) == 1
    assert await claims.sweep() == 0 and await notifications.expand_opened_gifts() == 0
    assert await db.claims.count_documents({"order_id": order_id}) == 2
    assert await db.outbox.count_documents({"order_id": order_id, "kind": {"$in": ["gift_opened", "open_claims"]},
                                            "status": "done"}) == 2


@pytest.mark.gen_test
async def test_the_operators_no_beacon_policy_is_written_in_the_proof_and_the_verifier_says_so(
        db, gifts, drawer, fake):
    for index in range(3):
        fake.set_fault(index, "down")
    order_id, draws = await drawn(gifts, db, drawer, beacon_of(fake, fallback_after=1.0), beacon_wait=0.3)
    gift = await db.gifts.find_one({"_id": order_id})
    assert gift["status"] == "drawing"  # not before 1 s
    frozen_at = clock.parse_time(gift["freeze"]["frozen_at"]).timestamp()
    await until(lambda: time.time() - frozen_at >= 1.0)
    assert await draws.sweep() == 1
    proof = await draws.proof(order_id)
    assert proof["beacon"]["status"] == "unavailable"
    assert proof["beacon"]["policy"] == "without the beacon after 1 s with no relay answering"
    problems = fairness.verify(proof, fake.chain)
    assert len(problems) == 1 and problems[0].startswith("no beacon: this draw went ahead without its round")
