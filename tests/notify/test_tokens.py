"""The access token: one for every process, refreshed ahead of expiry by one at a time, and
force-refreshed only when WeChat rejects it."""
import asyncio
from datetime import timedelta

import pytest

from lottery import clock
from notify.tokens import AccessTokens
from wechat.client import WeChatClient
from fakes.wechat import APPID, SECRET


def tokens_for(db, wechat_fake, **kwargs) -> AccessTokens:
    """A separate client, as another process would have."""
    return AccessTokens(db, WeChatClient(APPID, SECRET, wechat_fake.url, timeout=2.0), **kwargs)


@pytest.mark.gen_test(timeout=30)
async def test_processes_share_one_token_fetched_once(db, wechat_fake):
    many = [tokens_for(db, wechat_fake) for _ in range(5)]
    got = await asyncio.gather(*(t.get() for t in many for _ in range(4)))
    assert len(set(got)) == 1 and got[0] == wechat_fake.token
    assert len(wechat_fake.stable_token_calls()) == 1
    stored = await db.wechat_tokens.find_one({"_id": APPID})
    assert stored["token"] == got[0] and stored["refresh_until"] is None


@pytest.mark.gen_test(timeout=30)
async def test_a_token_near_expiry_is_refreshed_ahead_by_one_process(db, wechat_fake):
    wechat_fake.token_lifetime = 200  # inside the 5 minute refresh-ahead window at once
    first = tokens_for(db, wechat_fake)
    await first.get()
    wechat_fake.token_lifetime = 7200
    wechat_fake.expire_token()  # so that the normal mode hands out a new one
    others = [tokens_for(db, wechat_fake) for _ in range(4)]
    # One of them refreshes; the others use the stored token (still valid) meanwhile.
    await asyncio.gather(*(t.get() for t in others))
    assert len(wechat_fake.stable_token_calls(forced=False)) == 2
    got = await asyncio.gather(*(t.get() for t in others))
    assert set(got) == {wechat_fake.token}
    assert wechat_fake.stable_token_calls(forced=True) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_rejected_token_is_force_refreshed_once_however_many_saw_it(db, wechat_fake):
    a, b = tokens_for(db, wechat_fake), tokens_for(db, wechat_fake)
    old = await a.get()
    assert await b.get() == old
    replaced = await asyncio.gather(*(t.replace(old) for t in (a, b) for _ in range(5)))
    assert len(set(replaced)) == 1 and replaced[0] != old
    assert len(wechat_fake.stable_token_calls(forced=True)) == 1
    stored = await db.wechat_tokens.find_one({"_id": APPID})
    assert stored["forced_count"] == 1


@pytest.mark.gen_test(timeout=30)
async def test_forced_refreshes_keep_30_seconds_apart(db, wechat_fake):
    tokens = tokens_for(db, wechat_fake)
    first = await tokens.get()
    second = await tokens.replace(first)
    await tokens.replace(second)  # rejected again within 30 s: no second forced refresh
    assert len(wechat_fake.stable_token_calls(forced=True)) == 1
    await db.wechat_tokens.update_one(
        {"_id": APPID}, {"$set": {"forced_at": clock.utcnow() - timedelta(seconds=31)}})
    current = (await db.wechat_tokens.find_one({"_id": APPID}))["token"]
    await tokens.replace(current)
    assert len(wechat_fake.stable_token_calls(forced=True)) == 2


@pytest.mark.gen_test(timeout=30)
async def test_no_more_than_20_forced_refreshes_a_day(db, wechat_fake):
    tokens = tokens_for(db, wechat_fake)
    token = await tokens.get()
    await db.wechat_tokens.update_one({"_id": APPID}, {"$set": {
        "forced_day": clock.utcnow().date().isoformat(), "forced_count": 20}})
    await tokens.replace(token)
    assert wechat_fake.stable_token_calls(forced=True) == []
