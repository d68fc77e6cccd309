"""Orders and payments: how many orders a server creates and gets paid per second through its real
routes, against the local WeChat Pay fake (in its own process, as WeChat Pay would be).

1. U buyers (logged in beforehand) each create an order of one product at concurrency C over
   HTTP (`POST /api/v1/orders`: pricing, the stock hold, the JSAPI prepay at the fake, the pay
   parameters): orders/s, p50/p99.
2. The fake pays them all, C at a time: each payment sends the server its signed, encrypted
   notify, which the server verifies, decrypts and applies (`POST /api/payment/wechat/notify`):
   notifies/s, p50/p99 of the notify round trip, and that every order ended paid exactly once.

    python bench/orders.py [--buyers 500] [--concurrency 20]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


async def run(args: argparse.Namespace) -> dict:
    from bench.shop import shop_server

    async with shop_server(args.concurrency) as shop:
        product_id = await shop.product("咖啡券", 2800, args.buyers * 2)
        keys = await shop.login_all([f"buyer{i}" for i in range(args.buyers)], args.concurrency)
        gate = asyncio.Semaphore(args.concurrency)

        async def buy(key: str) -> tuple[float, str]:
            async with gate:
                started = time.perf_counter()
                status, answer = await shop.api.request("POST", "/api/v1/orders", {
                    "items": [{"product_id": product_id, "quantity": 1}], "method": "direct"}, token=key)
                assert status == 201, answer
                return time.perf_counter() - started, answer["order_id"]

        started = time.perf_counter()
        bought = await asyncio.gather(*(buy(k) for k in keys))
        create_seconds = time.perf_counter() - started
        paid = await shop.fake.pay([order_id for _, order_id in bought], args.concurrency)
        paid_orders = await shop.db.gifts.count_documents({"order.status": "paid"})
        versions = {doc["version"] async for doc in shop.db.gifts.find({"order.status": "paid"}, {"version": 1})}
    create_p50, create_p99 = percentiles([seconds for seconds, _ in bought])
    notify_p50, notify_p99 = percentiles(paid["latencies"])
    return {
        "bench": "orders", "buyers": args.buyers, "concurrency": args.concurrency,
        "orders_created_per_s": round(args.buyers / create_seconds, 1),
        "create_p50_ms": round(create_p50 * 1000, 1), "create_p99_ms": round(create_p99 * 1000, 1),
        "notifies_per_s": round(args.buyers / paid["seconds"], 1),
        "notify_p50_ms": round(notify_p50 * 1000, 1), "notify_p99_ms": round(notify_p99 * 1000, 1),
        "notify_answers": sorted(set(paid["statuses"])),
        # Each order paid once: every order paid, each one version step from unpaid to paid.
        "paid_exactly_once": paid_orders == args.buyers and versions == {2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buyers", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    figures = asyncio.run(run(parser.parse_args()))
    print(f"{figures['buyers']} orders at concurrency {figures['concurrency']}: {figures['orders_created_per_s']}/s "
          f"created (p50 {figures['create_p50_ms']} ms, p99 {figures['create_p99_ms']} ms); paid through "
          f"{figures['notifies_per_s']} notifies/s (p50 {figures['notify_p50_ms']} ms, p99 {figures['notify_p99_ms']} ms); "
          f"each paid once: {figures['paid_exactly_once']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
