"""/metrics: on its own port only, and its numbers move with what the server does (a small join
storm, refusals, a draw, a websocket waiting for its result, the database commands behind them)."""
import asyncio
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lottery.storage.engine import free_port
from tests.api import Api
from tests.handlers.test_realtime import subscribed
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include these."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


@pytest.mark.gen_test(timeout=120)
async def test_metrics_count_joins_refusals_a_draw_and_its_push_on_their_own_port(
        engine_uri, db_name, wechat_fake):
    metrics_port = free_port()
    server = ServerProcess(uri_with_db(engine_uri, db_name), wechat_fake.url, f"--metrics_port={metrics_port}").start()
    api = Api(server.base_url)
    try:
        assert (await api.request("GET", "/metrics"))[0] == 404  # never on the public port
        before = scrape(metrics_port)
        direct = await api.create_gift(method="direct", items=[{"name": "券"}] * 10)
        full = await api.create_gift(method="full", open_number=3, items=[{"name": "杯"}])
        keys = [await api.login(f"m{i}") for i in range(12)]
        answers = await asyncio.gather(*(api.join(k, direct) for k in keys))
        assert sorted(s for s, _ in answers) == [200] * 10 + [410] * 2  # two found no item left
        joined = next(key for key, (status, _) in zip(keys, answers) if status == 200)
        assert (await api.join(joined, direct))[0] == 409  # already joined
        watcher = await subscribed(server.base_url, keys[0], full)
        await watcher.next("snapshot")
        during = scrape(metrics_port)
        assert value(during, "gift_lottery_ws_connections") == 1
        assert value(during, "gift_lottery_ws_subscriptions") == 1
        for key in keys[:3]:
            assert (await api.join(key, full))[0] == 200  # the third opens it
        opened = await watcher.next("opened")
        assert opened["me"]["state"] in ("won", "lost")
        watcher.close()
        # The push can reach the page before the drawing task counts the draw (it waits on its
        # own database reply): the count follows within moments.
        def once_the_draw_is_counted() -> dict | None:
            samples = scrape(metrics_port)
            drawn = value(samples, "gift_lottery_draws_total", method="full") > value(before, "gift_lottery_draws_total", method="full")
            return samples if drawn else None
        after = await until(once_the_draw_is_counted, timeout=10)
    finally:
        api.close()
        server.stop()

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("gift_lottery_joins_total", method="direct", outcome="joined") == 10
    assert moved("gift_lottery_joins_total", method="direct", outcome="no_items_left") == 2
    assert moved("gift_lottery_joins_total", method="direct", outcome="already_joined") == 1
    assert moved("gift_lottery_joins_total", method="full", outcome="joined") == 3
    assert moved("gift_lottery_http_request_duration_seconds_count", route="JoinHandler", status="200") == 13
    assert moved("gift_lottery_http_request_duration_seconds_count", route="JoinHandler", status="410") == 2
    assert moved("gift_lottery_http_request_duration_seconds_count", route="JoinHandler", status="409") == 1
    assert moved("gift_lottery_draws_total", method="full") == 1
    assert moved("gift_lottery_draw_duration_seconds_count") >= 1
    assert moved("gift_lottery_ws_frames_sent_total", type="snapshot") >= 1
    assert moved("gift_lottery_ws_frames_sent_total", type="opened") == 1
    assert moved("gift_lottery_result_push_seconds_count") == 1
    assert moved("gift_lottery_result_fanout_seconds_count") == 1
    assert moved("gift_lottery_mongodb_command_seconds_count", command="update") >= 16
    assert moved("gift_lottery_mongodb_command_seconds_count", command="insert") >= 13
    # Gauges for every backlog exist from the start, counted in the background.
    assert ("gift_lottery_backlog", (("queue", "notifications_pending"),)) in before
