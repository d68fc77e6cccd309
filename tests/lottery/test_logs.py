"""Logs as one JSON object per line, each line of a request with its request id: the client's
`X-Request-Id` is answered back, and the draw a join sets off and the notification that draw
sends log under the join's id; a malformed id is replaced; no login key in any line."""
import json

import pytest

from tests.api import Api
from tests.notify.support import CONFIG_JSON
from tests.servers import ServerProcess, uri_with_db
from tests.waiting import until

SUBSCRIBED = {"subscribed": ["tpl_won", "tpl_lost"]}


def json_lines(server: ServerProcess) -> list[dict]:
    """Every line the server logged, each of which must be a JSON object."""
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "request_id", "member_id"} <= set(line) for line in lines)
    return lines


@pytest.mark.gen_test(timeout=90)
async def test_json_lines_carry_the_request_id_into_the_draw_and_its_notifications(engine_uri, db, db_name,
                                                                                    wechat_fake):
    server = ServerProcess(uri_with_db(engine_uri, db_name), wechat_fake.url, "--log_format=json",
                           "--sweep_seconds=30", "--notify_backoff_seconds=0.2")  # the join opens it, not a sweep
    server.env["NOTIFY_TEMPLATES"] = CONFIG_JSON
    server.start()
    api = Api(server.base_url)
    try:
        order_id = await api.create_gift(method="full", open_number=2, items=[{"name": "耳机"}])
        ann, bob = await api.login("ann"), await api.login("bob")
        assert (await api.join(ann, order_id, SUBSCRIBED))[0] == 200
        # WeChat refuses the first message the draw sends: the worker logs it as a warning.
        wechat_fake.fail_next("/cgi-bin/message/subscribe/send", {"errcode": 40003, "errmsg": "invalid openid"})
        response = await api.http.fetch(f"{server.base_url}/api/v1/gifts/{order_id}/join", method="POST",
                                        body=json.dumps(SUBSCRIBED), raise_error=False,
                                        headers={"Authorization": f"Bearer {bob}", "X-Request-Id": "join-bob-7"})
        assert response.code == 200 and response.headers["X-Request-Id"] == "join-bob-7"
        await until(lambda: "refused by WeChat" in server.log_text(), timeout=30)
        for odd in ("two words", "x" * 65, "<script>"):
            answer = await api.http.fetch(f"{server.base_url}/healthz", headers={"X-Request-Id": odd},
                                          raise_error=False)
            assert answer.code == 200 and answer.headers["X-Request-Id"] != odd
            assert len(answer.headers["X-Request-Id"]) == 16
    finally:
        api.close()
        server.stop()
    lines = json_lines(server)
    bobs = [line for line in lines if line["request_id"] == "join-bob-7"]
    [access] = [line for line in bobs if line["logger"] == "tornado.access"]
    assert access["route"] == "JoinHandler" and access["status"] == 200 and access["duration_ms"] > 0
    assert access["member_id"] and access["member_id"] != bob
    assert any(f"gift {order_id} opened" in line["message"] for line in bobs)  # the draw it set off
    refused = [line for line in bobs if "refused by WeChat" in line["message"]]  # and the notification
    assert refused and refused[0]["level"] == "warning" and refused[0]["logger"] == "notify.worker"
    assert (await db.notifications.find_one({"order_id": order_id, "kind": "gift_won"}))["request_id"] == "join-bob-7"
    text = server.log_text()
    assert ann not in text and bob not in text  # login keys never reach a log
