"""Several processes behind nginx, as production runs them (tests/deploy/conftest.py): joins
and waiting pages spread over three web processes, a web process and a scheduler leader killed
(SIGKILL) in the middle of things, and everything restarted on the same database."""
import asyncio
import random
from collections import Counter

import pytest

from lottery.storage import leases
from tests.deploy.support import (close_all, expected_outcome, handshakes, in_seconds, items, join_all, log_marks,
                                  outcome, results, sign_in, watching)
from tests.deployment import SCHEDULER_ARGS
from tests.gifts import make_due
from tests.notify.support import settled
from tests.waiting import until, until_past
from tests.ws import LiveClient

pytestmark = pytest.mark.deploy


async def finished(store, order_id: str) -> dict | None:
    gift = await store.gifts.find_one({"_id": order_id})
    return gift if gift["status"] == "finished" else None


async def outcomes_recorded(store, order_id: str) -> dict | None:
    """The finished gift once its outcomes are copied onto the joins (the draw's last step)."""
    record = await store.outbox.find_one({"_id": f"outcomes:{order_id}"})
    return await store.gifts.find_one({"_id": order_id}) if record and record["status"] == "done" else None


def check_results(clients: list[LiveClient], members: dict[str, str], gift: dict, joined: set[str]) -> None:
    """Every client shows its member's own result of the gift, from exactly one `opened`."""
    for client in clients:
        member_id = members[client.login_key]
        assert outcome(client.results[gift["_id"]]["me"]) == expected_outcome(gift, member_id, joined)
        assert client.opened[gift["_id"]] == 1


@pytest.mark.gen_test(timeout=120)
async def test_joins_through_nginx_count_once_and_every_waiting_page_on_any_process_gets_its_result(
        cluster, api, store):
    direct = await api.create_gift(method="direct", items=items(20))
    full = await api.create_gift(method="full", open_number=50, items=items(5))
    timed = await api.create_gift(method="timed", open_at=in_seconds(3600).isoformat(), items=items(10))
    keys = await sign_in(api, "a", 200)
    members = {key: member_id for member_id, key in keys.items()}
    marks = log_marks(cluster.webs)
    # 300 waiting pages: every member's, and a second tab for a hundred of them.
    pages = list(keys.values()) + list(keys.values())[:100]
    clients = await watching(cluster.base_url, pages, [full, timed])
    try:
        spread = [handshakes(web, mark) for web, mark in zip(cluster.webs, marks)]
        assert sum(spread) == 300 and min(spread) >= 50, spread  # nginx spread them over the three

        # Every member joins the three gifts at once, in a random order.
        tries = [(key, gift) for key in keys.values() for gift in (direct, full, timed)]
        random.shuffle(tries)
        answers = await asyncio.gather(*(api.join(key, gift) for key, gift in tries))
        codes: dict[str, Counter] = {gift: Counter() for gift in (direct, full, timed)}
        for (_, gift), (status, _) in zip(tries, answers):
            codes[gift][status] += 1
        assert codes[direct][200] == 20 and codes[direct][200] + codes[direct][410] == 200, codes[direct]
        assert codes[full][200] == 50 and codes[full][200] + codes[full][409] + codes[full][410] == 200, codes[full]
        assert codes[timed] == {200: 200}
        for gift, count in ((direct, 20), (full, 50), (timed, 200)):
            assert (await store.gifts.find_one({"_id": gift}))["joined_count"] == count
            assert await store.joins.count_documents({"order_id": gift}) == count
        won = [j["item_index"] for j in await store.joins.find({"order_id": direct, "outcome": "won"}).to_list()]
        assert sorted(won) == list(range(20))  # each item once, none twice

        # The full gift opened with its last seat; the timed one opens now, by the scheduler.
        await make_due(store, timed)
        for gift in (full, timed):
            await results(clients, gift)
            drawn = await finished(store, gift)
            joined = {j["member_id"] for j in await store.joins.find({"order_id": gift}).to_list()}
            assert len(drawn["draw"]["winners"]) == len(set(drawn["draw"]["winners"])) == len(drawn["items"])
            check_results(clients, members, drawn, joined)
    finally:
        await close_all(clients)


@pytest.mark.gen_test(timeout=120)
async def test_a_killed_web_process_s_pages_reconnect_through_nginx_and_miss_nothing(cluster, api, store):
    during = await api.create_gift(method="timed", open_at=in_seconds(3600).isoformat(), items=items(5))
    after = await api.create_gift(method="timed", open_at=in_seconds(3600).isoformat(), items=items(5))
    keys = await sign_in(api, "b", 60)
    members = {key: member_id for member_id, key in keys.items()}
    for gift in (during, after):
        assert await join_all(api, list(keys.values()), gift) == [200] * 60
    victim, survivors = cluster.webs[0], cluster.webs[1:]
    marks, nginx_mark = log_marks(cluster.webs), len(cluster.nginx.log())
    clients = await watching(cluster.base_url, [*keys.values(), *keys.values(), *list(keys.values())[:30]],
                             [during, after])
    on_victim = handshakes(victim, marks[0])
    assert on_victim > 0
    marks = log_marks(cluster.webs)

    # Reads keep going through nginx while the process dies.
    statuses: list[int] = []
    stop = asyncio.Event()

    async def reading(key: str) -> None:
        while not stop.is_set():
            statuses.append((await api.gift(key, after))[0])

    readers = [asyncio.ensure_future(reading(key)) for key in list(keys.values())[:8]]
    try:
        for client in clients:
            client.may_connect.clear()  # the gap lasts until the test says so
        victim.kill()  # SIGKILL
        await until(lambda: sum(not c.connected for c in clients) == on_victim)
        # A gift opens while the victim's pages are away.
        await make_due(store, during)
        await until(lambda: finished(store, during))
        gone = [c for c in clients if not c.connected]
        assert not any(during in c.results for c in gone)
        for client in clients:
            client.may_connect.set()
        await results(clients, during)
        assert all(c.connects == 2 for c in gone)
        assert sum(handshakes(p, m) for p, m in zip(survivors, marks[1:])) == on_victim

        # With one process down, joins go on and the next gift reaches every page.
        late = await sign_in(api, "b_late", 20)
        assert await join_all(api, list(late.values()), after) == [200] * 20
        await make_due(store, after)
        await results(clients, after)
    finally:
        stop.set()
        await asyncio.gather(*readers)
        await close_all(clients)
    assert statuses and set(statuses) == {200}, Counter(statuses)
    for gift in (during, after):
        drawn = await finished(store, gift)
        check_results(clients, members, drawn, set(keys))
    # nginx logs a websocket when it closes: every one is in, and no login key with it.
    await until(lambda: cluster.nginx.log()[nginx_mark:].count('"GET /ws ') >= sum(c.connects for c in clients))
    logs = cluster.nginx.logs()
    assert not any(key in logs for key in keys.values())


@pytest.mark.gen_test(timeout=120)
async def test_the_standby_finishes_a_draw_whose_scheduler_leader_was_killed_once(
        cluster, api, store, deploy_wechat):
    # The leader from now on is a process whose draws stall before the result (tests/stalling.py).
    for process in cluster.schedulers:
        process.kill()
    stalling = cluster.process(*SCHEDULER_ARGS, stall="before_finish").start()
    cluster.schedulers = [stalling]
    try:
        await until(lambda: leader_is(store, stalling.process.pid))
        standby = cluster.process(*SCHEDULER_ARGS).start()
        cluster.schedulers.append(standby)
        order_id = await api.create_gift(method="timed", open_at=in_seconds(3600).isoformat(), items=items(5))
        keys = await sign_in(api, "c", 80)
        members = {key: member_id for member_id, key in keys.items()}
        subscribed = {"subscribed": ["tpl_won", "tpl_lost"]}
        assert await join_all(api, list(keys.values()), order_id, subscribed) == [200] * 80
        clients = await watching(cluster.base_url, list(keys.values())[:40], [order_id])
        try:
            await make_due(store, order_id)

            async def frozen_not_finished():
                gift = await store.gifts.find_one({"_id": order_id})
                proof = await store.draw_results.find_one({"_id": order_id})  # drawn
                return proof if proof and gift["status"] == "drawing" else None
            proof = await until(frozen_not_finished)
            stalling.kill()  # SIGKILL, mid-draw
            gift = await until(lambda: outcomes_recorded(store, order_id), timeout=60)
            await results(clients, order_id)
            counts = await settled(store, order_id)
        finally:
            await close_all(clients)
    finally:
        # The next test gets two ordinary schedulers again.
        stalling.kill()
        cluster.schedulers = [cluster.process(*SCHEDULER_ARGS) if p is stalling else p for p in cluster.schedulers]
        cluster.schedulers += [cluster.process(*SCHEDULER_ARGS) for _ in range(2 - len(cluster.schedulers))]

    assert gift["draw"]["winners"] == proof["winner_member_ids"]  # the list the killed leader froze
    assert len(set(gift["draw"]["winners"])) == 5
    assert await store.proofs.count_documents({"_id": order_id}) == 1
    won = sorted(j["item_index"] for j in await store.joins.find({"order_id": order_id, "outcome": "won"}).to_list())
    assert won == [0, 1, 2, 3, 4]
    assert f"gift {order_id} opened" not in stalling.log_text()
    assert standby.log_text().count(f"gift {order_id} opened") == 1
    check_results(clients, members, gift, set(keys))
    # One subscribe message per member, none twice.
    openids = {f"o_c{i}" for i in range(80)}
    sent = Counter(m["touser"] for m in deploy_wechat.delivered if m["touser"] in openids)
    assert sent == Counter({openid: 1 for openid in openids}) and counts["sent"] == 80


async def leader_is(store, pid: int) -> bool:
    lease = await leases.get(store, "scheduler")
    return lease is not None and f":{pid}:" in lease["owner"]


@pytest.mark.gen_test(timeout=120)
async def test_everything_restarted_on_the_same_database_loses_nothing_and_opens_on_time(cluster, api, store):
    keys = await sign_in(api, "d", 30)
    members = {key: member_id for member_id, key in keys.items()}
    everyone = list(keys.values())
    direct = await api.create_gift(method="direct", items=items(3))
    full = await api.create_gift(method="full", open_number=4, items=items(2))
    # One gift comes due while everything is down, one after it is back.
    while_down, soon = in_seconds(6), in_seconds(16)
    down = await api.create_gift(method="timed", open_at=while_down.isoformat(), items=items(3))
    back = await api.create_gift(method="timed", open_at=soon.isoformat(), items=items(3))
    assert sorted(await join_all(api, everyone[:5], direct)) == [200] * 3 + [410] * 2
    assert await join_all(api, everyone[:4], full) == [200] * 4
    for gift in (down, back):
        assert await join_all(api, everyone, gift) == [200] * 30
    await until(lambda: finished(store, full))
    views = {(gift, key): (await api.gift(key, gift))[1] for gift in (direct, full) for key in everyone[:6]}

    cluster.stop()  # SIGTERM to every server process, then nginx
    assert not any(p.running for p in cluster.processes)
    await until_past(while_down)
    cluster.start()

    for (gift, key), before in views.items():
        status, now = await api.gift(key, gift)
        assert status == 200 and now["me"] == before["me"]
        assert {k: now["gift"][k] for k in ("status", "joined_count", "items_left")} == \
            {k: before["gift"][k] for k in ("status", "joined_count", "items_left")}
    assert (await api.join(everyone[0], back))[0] == 409  # the join is still there
    clients = await watching(cluster.base_url, everyone, [down, back])
    try:
        for gift in (down, back):
            await results(clients, gift)
            drawn = await finished(store, gift)
            assert drawn["opened_at"] >= drawn["open_at"]  # never before its time
            assert drawn["joined_count"] == 30 and len(drawn["draw"]["winners"]) == 3
            for client in clients:
                assert outcome(client.results[gift]["me"]) == expected_outcome(drawn, members[client.login_key],
                                                                               set(keys))
    finally:
        await close_all(clients)
