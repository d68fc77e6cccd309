"""Backups of the embedded engine: taken through the admin route while members join, restored
with `secantus-restore-archive` into a fresh directory, where every gift, join and order
acknowledged before the backup is found again, and the gifts are as consistent as they were."""
import asyncio
import os
import subprocess
import sys

import pytest
from pymongo import MongoClient

from lottery.storage.engine import EmbeddedEngine
from tests.api import Api
from tests.servers import ServerProcess
from tests.shop import bought_gift, product, wechatpay_env

RESTORE = os.path.join(os.path.dirname(sys.executable), "secantus-restore-archive")


@pytest.mark.gen_test(timeout=180)
async def test_a_backup_taken_during_joins_restores_every_acknowledged_gift_join_and_order(
        wechat_fake, pay_fake, tmp_path):
    server = ServerProcess("", wechat_fake.url, f"--data_dir={tmp_path / 'data'}",
                           f"--backup_dir={tmp_path / 'backups'}")
    server.env.update(wechatpay_env(pay_fake, server.port, tmp_path))
    server.start()
    api = Api(server.base_url)
    try:
        cup = await product(api, "保温杯", 12900, 100)
        buyer = await api.login("buyer")
        orders = [await bought_gift(api, pay_fake, buyer, (cup, 40), method="direct", wish=f"礼物{i}")
                  for i in range(2)]
        members = [await api.login(f"friend{i}") for i in range(60)]
        # Joins acknowledged before the backup...
        before = await asyncio.gather(*(api.join(m, orders[0]) for m in members[:30]))
        assert {s for s, _ in before} == {200}
        # ...and more racing it.
        racing = asyncio.gather(*(api.join(m, o) for m in members[30:] for o in orders))
        status, backup = await api.request("POST", "/api/admin/backup", {}, token=api.admin_token)
        await racing
        assert status == 201 and backup["size_bytes"] > 0, backup
        assert os.path.dirname(backup["path"]) == str(tmp_path / "backups") and os.path.exists(backup["path"])
        assert (await api.request("POST", "/api/admin/backup", {}, token=buyer))[0] == 403  # the admin token only
    finally:
        api.close()
        server.stop()

    restored = tmp_path / "restored"
    subprocess.run([RESTORE, "--archive", backup["path"], "--target-dir", str(restored)], check=True,
                   capture_output=True)
    engine = EmbeddedEngine(str(restored))
    client = MongoClient(engine.start())
    try:
        db = client["gift_lottery"]
        gifts = {g["_id"]: g for g in db.gifts.find({"_id": {"$in": orders}})}
        assert set(gifts) == set(orders)
        assert all(g["order"]["status"] == "paid" for g in gifts.values())
        joins = {}
        for join in db.joins.find({"order_id": {"$in": orders}}):
            joins.setdefault(join["order_id"], set()).add(join["member_id"])
        first = gifts[orders[0]]
        assert len(joins[orders[0]]) >= 30 and len(first["claimants"]) >= 30
        for order_id, gift in gifts.items():
            # One update wrote each seat: a snapshot never splits it.
            assert gift["joined_count"] == len(gift["claimants"]) == gift["items_total"] - gift["items_left"]
            assert joins.get(order_id, set()) <= set(gift["claimants"])
        assert db.products.find_one({"name": "保温杯"})["stock"] == 100 - 80
    finally:
        client.close()  # before the engine stops: closing ends its sessions there
        engine.stop()
