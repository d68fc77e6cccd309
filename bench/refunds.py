"""Refunds: how fast the refund worker drains a backlog through WeChat Pay (the local fake, in its
own process), and that every order is refunded exactly once.

1. O orders of I items each (full gifts nobody joined) are made through the real routes and paid
   at the fake; all reach their deadline at once, and the draw registers every item for refund:
   O x I refundable items (10,000 by default).
2. W refund workers (each as a scheduler process would run one, with its own lease owner) plan
   the refunds (one per order: all its items), send them to the fake, which completes each after
   a short delay and sends its signed, encrypted refund notify to the server; the notifies (or a
   query) settle them. Refunds sent per second and settled per second.
3. Exactly once: the fake executed one refund per order for the order's whole amount, received
   one refund request per order, and the money invariant holds for every order.

    python bench/refunds.py [--orders 1000] [--items 10] [--workers 2]

Last line: one JSON object with the figures."""
import argparse
import asyncio
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


async def run(args: argparse.Namespace) -> dict:
    from bench.shop import shop_server
    from lottery import clock
    from lottery.refunds import Refunds
    from tests.shop import check_money

    price = 1990
    async with shop_server(args.concurrency, refund_delay=0.05) as shop:
        product_id = await shop.product("坚果礼盒", price, args.orders * args.items)
        buyers = await shop.login_all([f"buyer{i}" for i in range(max(1, args.orders // 10))], args.concurrency)
        gate = asyncio.Semaphore(args.concurrency)

        async def buy(i: int) -> str:
            async with gate:
                status, answer = await shop.api.request("POST", "/api/v1/orders", {
                    "items": [{"product_id": product_id, "quantity": args.items}], "method": "full",
                    "open_number": args.items, "wish": f"礼物{i}"}, token=buyers[i % len(buyers)])
                assert status == 201, answer
                return answer["order_id"]

        started = time.perf_counter()
        order_ids = await asyncio.gather(*(buy(i) for i in range(args.orders)))
        paid = await shop.fake.pay(order_ids, args.concurrency)
        assert set(paid["statuses"]) == {204}, set(paid["statuses"])
        setup_seconds = time.perf_counter() - started
        # Every gift reaches its deadline with nobody in it: the draw gives each item back.
        now = clock.utcnow()
        await shop.db.gifts.update_many({"_id": {"$in": order_ids}}, {"$set": {"deadline_at": now, "due_at": now}})
        started = time.perf_counter()
        while await shop.app.settings["draws"].sweep():
            pass
        register_seconds = time.perf_counter() - started
        registered = sum([len(g["order"].get("refund_items") or {}) async for g in shop.db.gifts.find(
            {"_id": {"$in": order_ids}}, {"order.refund_items": 1})])

        workers = [Refunds(shop.db, shop.payments) for _ in range(args.workers)]
        done = asyncio.Event()

        async def work(refunds: Refunds) -> None:
            while not done.is_set():
                if not await refunds.run_once(limit=100):
                    await asyncio.sleep(0.05)

        async def settled() -> int:
            return await shop.db.refunds.count_documents({"status": "success"})

        started = time.perf_counter()
        tasks = [asyncio.create_task(work(w)) for w in workers]
        sent_seconds = None
        while await settled() < args.orders:
            if sent_seconds is None and await shop.db.refunds.count_documents(
                    {"status": {"$in": ["processing", "success"]}}) >= args.orders:
                sent_seconds = time.perf_counter() - started
            await asyncio.sleep(0.05)
        settle_seconds = time.perf_counter() - started
        done.set()
        await asyncio.gather(*tasks)
        at_fake = await shop.fake.refunds(order_ids)
        totals = {g["_id"]: g["order"] async for g in shop.db.gifts.find({"_id": {"$in": order_ids}},
                                                                        {"order.amount_total": 1, "order.amount_refunded": 1})}
        once = (at_fake["requests"] == args.orders
                and all(at_fake["refunds"][o] == [totals[o]["amount_total"]] for o in order_ids)
                and all(totals[o].get("amount_refunded") == totals[o]["amount_total"] for o in order_ids))
        await check_money(shop.db)  # raises if any order's money does not add up
    return {
        "bench": "refunds", "orders": args.orders, "items_per_order": args.items, "workers": args.workers,
        "refundable_items": registered, "setup_seconds": round(setup_seconds, 1),
        "register_seconds": round(register_seconds, 1),
        "refunds_sent_per_s": round(args.orders / (sent_seconds or settle_seconds), 1),
        "refunds_settled_per_s": round(args.orders / settle_seconds, 1),
        "items_refunded_per_s": round(registered / settle_seconds, 1),
        "refund_requests_at_wechat_pay": at_fake["requests"],
        "refunded_exactly_once": once,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=20)
    figures = asyncio.run(run(parser.parse_args()))
    print(f"{figures['refundable_items']} items in {figures['orders']} orders: drained by {figures['workers']} workers "
          f"at {figures['refunds_sent_per_s']} refunds sent/s, {figures['refunds_settled_per_s']} settled/s "
          f"({figures['items_refunded_per_s']} items/s); {figures['refund_requests_at_wechat_pay']} requests at "
          f"WeChat Pay; each order refunded once: {figures['refunded_exactly_once']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
