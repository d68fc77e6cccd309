"""The pages' own routes: the HTML pages, development sign-in, winners and participants."""
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from tests.servers import ROOT
from tests.waiting import until


@pytest.fixture
def dev_mode() -> bool:
    """On here; a test parametrizes it off."""
    return True


@pytest.fixture
def app(build_app, dev_mode):
    return build_app(dev=dev_mode)


async def dev_login(api, name) -> tuple[int, dict]:
    return await api.request("POST", "/api/dev/login", {"name": name})


async def opened(api, key: str, order_id: str) -> None:
    async def finished() -> bool:
        return (await api.gift(key, order_id))[1]["gift"]["status"] == "finished"
    await until(finished)


@pytest.mark.gen_test
async def test_dev_sign_in_gives_a_working_key_and_the_same_member_for_the_same_name(api, db):
    status, first = await dev_login(api, "  小  明 ")
    assert status == 200 and first["name"] == "小 明"
    _, second = await dev_login(api, "小 明")
    assert first["login_key"] != second["login_key"]
    assert await db.members.count_documents({"nickname": "小 明"}) == 1
    order_id = await api.create_gift(method="direct", sender_openid="dev_小 明")
    status, answer = await api.gift(second["login_key"], order_id)
    assert status == 200 and answer["me"]["state"] == "own_gift"
    assert answer["gift"]["sender"]["name"] == "小 明"


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["", "   ", None, 5, ["a"], "x" * 21, "a\x00b"])
async def test_dev_sign_in_refuses_bad_names(api, name):
    status, answer = await dev_login(api, name)
    assert status == 400 and answer["error"]["code"] == "invalid_input"


@pytest.mark.gen_test
@pytest.mark.parametrize("dev_mode", [False])
async def test_without_dev_mode_there_is_no_dev_sign_in(api, dev_mode):
    status, answer = await dev_login(api, "小明")
    assert status == 404
    status, answer = await api.request("GET", "/api/site")
    assert answer["dev"] is False and answer["demo_gifts"] == []


@pytest.mark.gen_test
async def test_pages_are_html_with_a_strict_content_policy(api, http_client, base_url):
    for path in ("/", "/gift/abc123", "/gift/abc123/wait", "/gift/abc123/result", "/gift/abc123/proof",
                 "/gift/abc123/mine/", "/shop", "/shop/", "/shop/product/abc123", "/shop/new",
                 "/shop/new?product=abc123", "/orders/abc123", "/orders/abc123/pay", "/me/prizes"):
        response = await http_client.fetch(base_url + path)
        assert response.code == 200, path
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    response = await http_client.fetch(base_url + "/static/js/fairness.js")
    assert response.code == 200 and b"hmac-sha256-fisher-yates" in response.body
    for path in ("/gift/abc123/other", "/static/../server.py", "/gift/a%2Fb", "/shop/other", "/shop/product/",
                 "/shop/product/a%2Fb", "/orders/abc123/other", "/orders/", "/me", "/me/other"):
        response = await http_client.fetch(base_url + path, raise_error=False)
        assert response.code in (403, 404), path


@pytest.mark.gen_test
async def test_winners_are_public_masked_and_only_after_the_draw(api):
    order_id = await api.create_gift(method="full", open_number=2, items=[{"name": "耳机"}])
    _, a = await dev_login(api, "王小明")
    _, b = await dev_login(api, "Alexander")
    await api.join(a["login_key"], order_id)
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/winners")
    assert status == 200 and answer["winners"] == [] and answer["status"] == "open"
    await api.join(b["login_key"], order_id)
    await opened(api, a["login_key"], order_id)
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/winners")
    assert status == 200 and answer["participant_count"] == 2
    [winner] = answer["winners"]
    assert winner["name"] in ("王*明", "A***r") and winner["item"]["name"] == "耳机"
    assert set(winner) == {"name", "avatar", "item"}
    status, _ = await api.request("GET", "/api/v1/gifts/000000000000000000000000/winners")
    assert status == 404


@pytest.mark.gen_test
async def test_a_direct_gift_lists_its_recipients_at_once(api):
    order_id = await api.create_gift(method="direct", items=[{"name": "A"}, {"name": "B"}])
    _, a = await dev_login(api, "阿")
    await api.join(a["login_key"], order_id)
    _, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/winners")
    assert [(w["name"], w["item"]["name"]) for w in answer["winners"]] == [("阿*", "A")]


@pytest.mark.gen_test
async def test_only_the_sender_sees_the_participant_list(api):
    _, sender = await dev_login(api, "发起人")
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    order_id = await api.create_gift(method="timed", sender_openid="dev_发起人", open_at=tomorrow)
    keys = []
    for name in ("甲", "乙乙", "丙丙丙"):
        _, answer = await dev_login(api, name)
        keys.append(answer["login_key"])
        await api.join(answer["login_key"], order_id)
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/participants", token=keys[0])
    assert status == 403
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/participants")
    assert status == 401
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/participants",
                                       token=sender["login_key"])
    assert status == 200 and answer["joined_count"] == 3
    assert [p["name"] for p in answer["participants"]] == ["丙丙丙", "乙乙", "甲"]
    assert all(p["outcome"] is None and p["joined_at"] for p in answer["participants"])


@pytest.mark.gen_test
async def test_the_sender_sees_a_direct_gifts_recipients_as_winners(api):
    _, sender = await dev_login(api, "发起人")
    order_id = await api.create_gift(method="direct", sender_openid="dev_发起人", items=[{"name": "A"}, {"name": "B"}])
    _, a = await dev_login(api, "阿")
    await api.join(a["login_key"], order_id)
    status, answer = await api.request("GET", f"/api/v1/gifts/{order_id}/participants", token=sender["login_key"])
    assert status == 200 and [(p["name"], p["outcome"]) for p in answer["participants"]] == [("阿", "won")]


def run_server(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "server.py"), *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("flag", ["--dev", "--demo"])
def test_dev_mode_is_refused_with_a_remote_database(flag):
    result = run_server(flag, env={"MONGODB_URI": "mongodb://db.example.com:27017/gifts"})
    assert result.returncode != 0
    assert "not a local database" in result.stderr
