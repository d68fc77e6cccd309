"""The shop's benchmarks' stage: a server (real routes, the embedded engine) whose WeChat Pay is
the local fake in its own process, as WeChat Pay would be. The benchmarks drive the fake by JSON
lines on its stdin (pay these orders; which refunds it executed)."""
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, AsyncIterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import asyncio, json, sys, time
sys.path.insert(0, {root!r})
from wechatpay import crypto
from fakes.wechatpay import APPID, FakeWeChatPay, MerchantKeys
merchant = MerchantKeys(crypto.load_private_key(open({key_file!r}, "rb").read()), {serial!r})
fake = FakeWeChatPay(appid=APPID, merchant=merchant, refund_delay={refund_delay!r}).start()
print(json.dumps({{"port": fake.port, "public_key_pem": fake.public_key_pem.decode(),
                   "public_key_id": fake.public_key_id}}), flush=True)

async def pay_all(order_ids, concurrency):
    gate = asyncio.Semaphore(concurrency)
    async def one(order_id):
        async with gate:
            started = time.perf_counter()
            [delivery] = await fake.pay(order_id)
            return time.perf_counter() - started, delivery.status
    started = time.perf_counter()
    done = await asyncio.gather(*(one(o) for o in order_ids))
    return {{"seconds": time.perf_counter() - started, "latencies": [d[0] for d in done],
             "statuses": [d[1] for d in done]}}

def refunds(order_ids):
    return {{"refunds": {{o: [r["refund"] for r in fake.refunds_of(o)] for o in order_ids}},
             "requests": len(fake.requests_to("/v3/refund/domestic/refunds", "POST"))}}

for line in sys.stdin:
    command = json.loads(line)
    order_ids = json.load(open(command["ids_file"]))
    if command["do"] == "pay":
        answer = asyncio.run(pay_all(order_ids, command["concurrency"]))
    else:
        answer = refunds(order_ids)
    print(json.dumps(answer), flush=True)
"""


class PayFakeProcess:
    """Start with a merchant's keys; `config(port)` is the server's WeChatPayConfig for it."""

    def __init__(self, refund_delay: float | None = None) -> None:
        from fakes.wechatpay import generate_merchant_keys
        self.merchant = generate_merchant_keys()
        self._key_file = tempfile.NamedTemporaryFile(suffix=".pem", delete=False)
        self._key_file.write(self.merchant.private_pem)
        self._key_file.close()
        self._process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT.format(root=ROOT, key_file=self._key_file.name, serial=self.merchant.serial,
                                                 refund_delay=refund_delay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.trusted = json.loads(self._process.stdout.readline())

    def config(self, port: int):
        from wechatpay import crypto
        from wechatpay.client import WeChatPayConfig
        from fakes.wechatpay import APIV3_KEY, APPID, MCHID
        base = f"http://127.0.0.1:{port}/api/payment/wechat"
        return WeChatPayConfig(
            mchid=MCHID, appid=APPID, apiv3_key=APIV3_KEY, private_key=self.merchant.private_key,
            cert_serial=self.merchant.serial, public_key_id=self.trusted["public_key_id"],
            verifier_keys={self.trusted["public_key_id"]: crypto.load_public_key(self.trusted["public_key_pem"].encode())},
            notify_url=f"{base}/notify", refund_notify_url=f"{base}/refund-notify",
            api_base=f"http://127.0.0.1:{self.trusted['port']}")

    async def pay(self, order_ids: list[str], concurrency: int) -> dict:
        """The fake pays each order (its signed notify to the server), `concurrency` at a time:
        seconds, per-payment latencies and the server's answers."""
        return await self._ask({"do": "pay", "concurrency": concurrency}, order_ids)

    async def refunds(self, order_ids: list[str]) -> dict:
        """The refund amounts the fake executed per order, and how many refund requests it got."""
        return await self._ask({"do": "refunds"}, order_ids)

    async def _ask(self, command: dict, order_ids: list[str]) -> dict:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as ids:
            json.dump(order_ids, ids)
        try:
            self._process.stdin.write(json.dumps({**command, "ids_file": ids.name}) + "\n")
            self._process.stdin.flush()
            return json.loads(await asyncio.get_running_loop().run_in_executor(None, self._process.stdout.readline))
        finally:
            os.unlink(ids.name)

    def stop(self) -> None:
        self._process.kill()
        self._process.wait()
        os.unlink(self._key_file.name)


@dataclass
class Shop:
    db: Any
    app: Any
    api: Any
    fake: PayFakeProcess
    payments: Any

    async def login_all(self, names: list[str], concurrency: int) -> list[str]:
        gate = asyncio.Semaphore(concurrency)

        async def one(name: str) -> str:
            async with gate:
                return await self.api.login(name)
        return await asyncio.gather(*(one(n) for n in names))

    async def product(self, name: str, price: int, stock: int) -> str:
        status, created = await self.api.request("POST", "/api/admin/products",
                                                 {"name": name, "price": price, "stock": stock}, token="bench")
        assert status == 201, created
        return created["product_id"]


@contextlib.asynccontextmanager
async def shop_server(concurrency: int, refund_delay: float | None = None) -> AsyncIterator[Shop]:
    """A server on a fresh in-memory engine, paid through a WeChat Pay fake process."""
    from lottery.storage.connection import client_for, ensure_indexes
    from lottery.storage.engine import EmbeddedEngine, free_port
    from wechat.client import WeChatClient
    from wechatpay.client import WeChatPayClient
    from fakes.wechatpay import APPID
    from server import http_server, make_app
    from config import Config
    from services import build_services
    from tests.api import Api
    from fakes.wechat import SECRET, FakeWeChat
    from tornado.httpclient import AsyncHTTPClient

    engine = EmbeddedEngine(":memory:")
    uri = engine.start()
    wechat = FakeWeChat().start()
    fake = PayFakeProcess(refund_delay)
    client = client_for(uri)
    try:
        port = free_port()
        payments = WeChatPayClient(fake.config(port),
                                   http=AsyncHTTPClient(force_instance=True, max_clients=concurrency + 4))
        db = client["bench_shop"]
        await ensure_indexes(db)
        app = make_app(build_services(config := Config(admin_token="bench", role="web"), db,
                                      wechat=WeChatClient(APPID, SECRET, wechat.url), payments=payments), config)
        server = http_server(app)
        server.listen(port, address="127.0.0.1")
        api = Api(f"http://127.0.0.1:{port}", admin_token="bench", max_clients=concurrency)
        try:
            yield Shop(db, app, api, fake, payments)
        finally:
            server.stop()
            api.close()
            await app.settings["draws"].idle()
            await app.settings["hub"].stop()
    finally:
        fake.stop()
        await client.close()
        wechat.stop()
        engine.stop()
