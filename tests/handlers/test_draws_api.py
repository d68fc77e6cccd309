"""Opening gifts over HTTP and across real processes: early open, proofs, crashes, two schedulers."""
from datetime import datetime, timedelta, timezone

import pytest

from lottery import fairness
from tests import beacons
from tests.api import Api
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until


async def finished(db, order_id: str):
    gift = await db.gifts.find_one({"_id": order_id})
    return gift if gift["status"] == "finished" else None


@pytest.mark.gen_test(timeout=60)
async def test_a_full_gift_opens_with_its_last_seat_and_publishes_a_valid_proof(api, db):
    order_id = await api.create_gift(method="full", open_number=4, items=[{"name": "A"}, {"name": "B"}])
    keys = [await api.login(f"p{i}") for i in range(4)]
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/proof")
    assert status == 409 and answer["error"]["code"] == "not_opened"
    for key in keys:
        assert (await api.join_gift(key, order_id))["code"] == "success"
    await until(lambda: finished(db, order_id))
    status, proof = await api.request("GET", f"/api/v1/gifts/{order_id}/proof")
    assert status == 200 and fairness.verify(proof, beacons.chain()) == []
    states = [(await api.gift(k, order_id))[1]["me"] for k in keys]
    assert sorted(s["state"] for s in states) == ["lost", "lost", "won", "won"]
    winners = {w["participant"] for w in proof["winners"]}
    assert {s["participant"] for s in states if s["state"] == "won"} == winners
    assert (await api.check(keys[0], order_id))["code"] == "suc"


@pytest.mark.gen_test(timeout=60)
async def test_early_open_is_for_the_sender_of_a_full_or_timed_gift(api, db):
    open_at = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    order_id = await api.create_gift(method="timed", open_at=open_at, sender_openid="o_owner")
    owner, joiner = await api.login("owner"), await api.login("joiner")
    await api.join(joiner, order_id)
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=joiner)
    assert status == 403
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=owner)
    assert status == 200 and answer["gift"]["status"] == "finished"
    assert (await api.gift(joiner, order_id))[1]["me"]["state"] == "won"
    status, _ = await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}, token=owner)
    assert status == 410
    direct = await api.create_gift(method="direct", sender_openid="o_owner")
    status, answer = await api.request("POST", f"/api/v1/gifts/{direct}/open", {}, token=owner)
    assert status == 409 and answer["error"]["code"] == "not_openable"
    assert (await api.request("POST", f"/api/v1/gifts/{order_id}/open", {}))[0] == 401


async def killed_and_recovered(uri: str, wechat_url: str, db, stall: str, crashed):
    """Run a draw in a real process that stalls at `stall`, SIGKILL it once `crashed(order_id)`
    holds, and let a fresh scheduler process finish. Returns (gift, what crashed returned)."""
    crashing = ServerProcess(uri, wechat_url, "--draw_lease_seconds=2", "--leader_lease_seconds=2",
                             stall=stall).start()
    api = Api(crashing.base_url)
    try:
        order_id = await api.create_gift(method="full", open_number=8,
                                         items=[{"name": f"item{i}"} for i in range(5)])
        for i in range(8):
            assert (await api.join_gift(await api.login(f"k{i}"), order_id))["code"] == "success"
        before = await until(lambda: crashed(order_id))
        crashing.kill()  # SIGKILL
    finally:
        api.close()
        crashing.kill()
    recovering = ServerProcess(uri, wechat_url, "--role=scheduler", "--draw_lease_seconds=2",
                               "--leader_lease_seconds=2").start()

    async def outcomes_recorded():
        record = await db.outbox.find_one({"_id": f"outcomes:{order_id}"})
        return await db.gifts.find_one({"_id": order_id}) if record and record["status"] == "done" else None

    try:
        gift = await until(outcomes_recorded, timeout=60)
    finally:
        recovering.stop()
    won = {j["member_id"]: j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()}
    assert sorted(won.values()) == [0, 1, 2, 3, 4]  # every item once, none twice
    assert gift["draw"]["winners"] == [m for m, _ in sorted(won.items(), key=lambda kv: kv[1])]
    assert await db.joins.count_documents({"order_id": order_id, "outcome": None}) == 3  # lost
    return gift, before


@pytest.mark.gen_test(timeout=120)
async def test_a_draw_killed_before_its_result_is_finished_by_the_next_process_with_the_same_winners(
        engine_uri, db, db_name, wechat_fake):
    async def frozen_but_not_finished(order_id):
        gift = await db.gifts.find_one({"_id": order_id})
        proof = await db.draw_results.find_one({"_id": order_id})  # drawn
        return proof if proof and gift["status"] == "drawing" else None

    gift, proof = await killed_and_recovered(uri_with_db(engine_uri, db_name), wechat_fake.url, db,
                                             "before_finish", frozen_but_not_finished)
    assert gift["draw"]["winners"] == proof["winner_member_ids"]  # the list the killed drawer froze


@pytest.mark.gen_test(timeout=120)
async def test_a_draw_killed_while_copying_outcomes_is_finished_by_the_next_process(
        engine_uri, db, db_name, wechat_fake):
    async def two_copied(order_id):
        joins = await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()
        return {j["member_id"]: j["item_index"] for j in joins} if len(joins) == 2 else None

    gift, before = await killed_and_recovered(uri_with_db(engine_uri, db_name), wechat_fake.url, db,
                                              "after_winners=2", two_copied)
    assert all(gift["draw"]["winners"][i] == m for m, i in before.items())


@pytest.mark.gen_test(timeout=120)
async def test_two_scheduler_processes_give_one_draw_per_gift(engine_uri, db, db_name, wechat_fake):
    uri = uri_with_db(engine_uri, db_name)
    web = ServerProcess(uri, wechat_fake.url, "--role=web").start()
    api = Api(web.base_url)
    open_at = (datetime.now(timezone.utc) + timedelta(seconds=15)).isoformat()  # setup (10 gifts, 50 joins) must fit before it, even on a loaded machine
    schedulers = []
    try:
        order_ids = [await api.create_gift(method="timed", open_at=open_at, items=[{"name": "A"}, {"name": "B"}])
                     for _ in range(10)]
        keys = [await api.login(f"s{i}") for i in range(5)]
        for order_id in order_ids:
            for key in keys:
                assert (await api.join(key, order_id))[0] == 200
        schedulers = [ServerProcess(uri, wechat_fake.url, "--role=scheduler", "--leader_lease_seconds=2",
                                    "--sweep_seconds=0.2").start() for _ in range(2)]
        for order_id in order_ids:
            await until(lambda: finished(db, order_id), timeout=60)
    finally:
        api.close()
        web.stop()
        for process in schedulers:
            process.stop()
    logs = "".join(p.log_text() for p in schedulers)
    for order_id in order_ids:
        assert logs.count(f"gift {order_id} opened") == 1
        assert sorted(j["item_index"] for j in await db.joins.find({"order_id": order_id, "outcome": "won"}).to_list()) == [0, 1]
