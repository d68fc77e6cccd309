"""Bad input gets a clear error and changes nothing: never a 500, never a query from it."""
import asyncio
import json

import pytest

LEGACY_ROUTES = ["/api/sharagift/checkHasJoin", "/api/sharagift/JoinGift"]


async def counts(db) -> tuple[int, int]:
    return await db.joins.count_documents({}), await db.gifts.count_documents({"joined_count": {"$gt": 0}})


@pytest.mark.gen_test
@pytest.mark.parametrize("route", LEGACY_ROUTES)
async def test_missing_fields_say_missing_params(api, route):
    for body in ({}, {"login_key": "k"}, {"order_id": "abc"}, {"login_key": "", "order_id": "abc"}):
        answer = await api.legacy(route, body)
        assert answer == {"code": "error", "message": "缺少参数", "data": None}


@pytest.mark.gen_test
@pytest.mark.parametrize("route", LEGACY_ROUTES)
async def test_operator_objects_and_wrong_types_are_refused(api, db, route):
    order_id = await api.create_gift(method="full", open_number=5)
    key = await api.login("mallory")
    for body in ({"login_key": {"$ne": None}, "order_id": order_id},
                 {"login_key": key, "order_id": {"$ne": None}},
                 {"login_key": key, "order_id": {"$gt": ""}},
                 {"login_key": key, "order_id": ["a"]},
                 {"login_key": key, "order_id": 12345},
                 {"login_key": key, "order_id": "x" * 65},
                 {"login_key": key, "order_id": "../../etc"},
                 *([{"login_key": key, "order_id": order_id, "form_id": {"$ne": 1}},
                    {"login_key": key, "order_id": order_id, "subscribed": [{"$ne": 1}]}]
                   if route.endswith("JoinGift") else [])):
        answer = await api.legacy(route, body)
        assert answer["code"] == "error" and answer["message"], body
    assert await counts(db) == (0, 0)


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"text"', b"null"])
async def test_malformed_json_is_a_clear_error(api, db, raw):
    order_id = await api.create_gift(method="full", open_number=5)
    key = await api.login("careless")
    status, answer = await api.request("POST", "/api/sharagift/JoinGift", raw=raw)
    assert status == 200 and answer["code"] == "error" and answer["message"]
    # With a valid key, so that only the body can be what is refused.
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/join", raw=raw, token=key)
    assert status == 400 and answer["error"]["code"] == "invalid_input" and answer["error"]["message"]
    status, answer = await api.request("POST", "/api/v1/me/profile", raw=raw, token=key)
    assert status == 400 and answer["error"]["code"] == "invalid_input"
    assert await counts(db) == (0, 0)


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"[" * 30_000 + b"]" * 30_000,  # 60 KB: the parser itself gives up
                                 b'{"a": ' * 33 + b"1" + b"}" * 33])  # one level past the limit
async def test_deeply_nested_json_is_a_clear_400_not_a_500(api, db, raw, caplog):
    order_id = await api.create_gift(method="full", open_number=5)
    key = await api.login("nested")
    status, answer = await api.request("POST", "/api/sharagift/JoinGift", raw=raw)
    assert status == 200 and answer["code"] == "error" and "嵌套过深" in answer["message"]
    for path, token in ((f"/api/v1/gifts/{order_id}/join", key), ("/api/v1/me/profile", key),
                        ("/api/admin/gifts", api.admin_token)):
        status, answer = await api.request("POST", path, raw=raw, token=token)
        assert status == 400 and answer["error"]["code"] == "invalid_input", path
        assert "嵌套过深" in answer["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= 40]
    assert await counts(db) == (0, 0)


@pytest.mark.gen_test
async def test_json_nested_up_to_the_limit_is_read(api):
    key = await api.login("shallow")
    raw = b'{"nickname": "ok", "x": ' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels with the body
    assert (await api.request("POST", "/api/v1/me/profile", raw=raw, token=key))[0] == 200


@pytest.mark.gen_test
async def test_a_body_over_64_kib_is_refused_with_a_clear_error(api, db):
    order_id = await api.create_gift(method="full", open_number=5)
    key = await api.login("big")
    raw = json.dumps({"login_key": key, "order_id": order_id, "form_id": "x" * 70_000}).encode()
    status, answer = await api.request("POST", "/api/sharagift/JoinGift", raw=raw)
    assert status == 200 and answer == {"code": "error", "message": "请求体过大", "data": None}
    status, answer = await api.request("POST", f"/api/v1/gifts/{order_id}/join", raw=raw, token=key)
    assert status == 413 and answer["error"]["code"] == "body_too_large"
    assert await counts(db) == (0, 0)


@pytest.mark.gen_test
async def test_a_body_over_1_mib_is_not_read_and_gets_a_bare_400(api, base_url):
    # The HTTP server's own cap (as in production): it answers before reading the body.
    host, port = base_url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /api/sharagift/JoinGift HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 2097152\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400 ")


@pytest.mark.gen_test
@pytest.mark.parametrize("open_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00"])
async def test_a_time_beyond_the_calendar_once_in_utc_is_a_clear_400(api, open_at):
    status, answer = await api.request("POST", "/api/admin/gifts", {
        "sender_openid": "o_s", "method": "timed", "items": [{"name": "a"}], "open_at": open_at},
        token=api.admin_token)
    assert status == 400 and answer["error"]["code"] == "invalid_input"


@pytest.mark.gen_test
@pytest.mark.parametrize("limit", ["%C2%B2", "%EF%BC%91", "%D9%A3", "1e3", "9" * 40])  # ², fullwidth 1, Arabic 3
async def test_a_query_number_must_be_ascii_digits(api, limit):
    status, answer = await api.request("GET", f"/api/admin/notifications?order_id=abc&limit={limit}",
                                       token=api.admin_token)
    assert status == 400 and answer["error"]["code"] == "invalid_input", limit


@pytest.mark.gen_test
@pytest.mark.parametrize("query", [
    "/api/admin/notifications?order_id=abc&limit=5&limit=500",
    "/api/admin/notifications?order_id=abc&order_id=abd",
    "/api/admin/claims?status=claimed&status=shipped",
    "/api/admin/refunds?cursor=a&cursor=b",
    "/api/v1/products?category=a&category=b",
    "/api/v1/orders?cursor=&cursor=2030-01-01T00:00:00Z",
])
async def test_a_query_parameter_given_twice_is_refused_not_guessed(api, query):
    token = api.admin_token if query.startswith("/api/admin/") else await api.login("twice")
    status, answer = await api.request("GET", query, token=token)
    assert status == 400 and answer["error"]["code"] == "invalid_input", (query, answer)


@pytest.mark.gen_test
async def test_unknown_gift_is_a_clear_error(api):
    key = await api.login("nobody")
    for route in LEGACY_ROUTES:
        answer = await api.legacy(route, {"login_key": key, "order_id": "0123456789abcdef01234567"})
        assert answer["code"] == "error" and answer["message"] == "订单错误，参与失败"
    status, answer = await api.gift(key, "0123456789abcdef01234567")
    assert status == 404 and answer["error"]["code"] == "gift_not_found"


@pytest.mark.gen_test
async def test_unknown_paths_and_methods_answer_json(api):
    status, answer = await api.request("GET", "/api/nope")
    assert status == 404 and answer["error"]["code"] == "http_404"
    status, answer = await api.request("GET", "/api/sharagift/JoinGift")
    assert status == 200 and answer["code"] == "error"  # legacy routes always answer 200
    status, answer = await api.request("GET", "/api/v1/gifts/abc/join")
    assert status == 405 and answer["error"]["code"] == "http_405"


@pytest.mark.gen_test
async def test_login_keys_never_reach_the_log(api, caplog):
    key = await api.login("secretive")
    order_id = await api.create_gift(method="full", open_number=2)
    caplog.set_level("DEBUG")
    await api.join_gift(key, order_id)
    await api.gift(key, order_id)
    await api.request("GET", f"/api/v1/gifts/{order_id}?login_key={key}")
    await api.join_gift(key, order_id)  # a refusal logs a warning
    assert key not in caplog.text
    assert "test-app-secret" not in caplog.text
