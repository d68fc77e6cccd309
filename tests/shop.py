"""The shop in tests: a catalogue made through the admin API, and orders paid at the local
WeChat Pay fake; the same made by the domain's services themselves, for tests/lottery/; the money
invariant, and refund rounds run to the end."""
from typing import Any

from lottery.catalogue import Catalogue, ProductSpec
from lottery.claims import Claims, clean_address
from lottery.gifts import Gifts
from lottery.orders import OrderLine, Orders, OrderSpec
from lottery.reconciliation import money_violations
from lottery.storage import joins
from tests.api import Api
from tests.waiting import until


async def category(api: Api, name: str = "零食", sort: int = 0) -> str:
    status, answer = await api.request("POST", "/api/admin/categories", {"name": name, "sort": sort},
                                       token=api.admin_token)
    assert status == 201, answer
    return answer["category_id"]


async def product(api: Api, name: str = "咖啡券", price: int = 2800, stock: int = 100, **fields: Any) -> str:
    body = {"name": name, "price": price, "stock": stock, **fields}
    status, answer = await api.request("POST", "/api/admin/products", body, token=api.admin_token)
    assert status == 201, answer
    return answer["product_id"]


def order_body(*lines: tuple[str, int], method: str = "direct", **fields: Any) -> dict:
    return {"items": [{"product_id": p, "quantity": q} for p, q in lines], "method": method, **fields}


async def order(api: Api, key: str, *lines: tuple[str, int], **fields: Any) -> tuple[int, Any]:
    return await api.request("POST", "/api/v1/orders", order_body(*lines, **fields), token=key)


async def stock_of(db, product_id: str) -> tuple[int, dict]:
    """(stock, held) of a product as stored."""
    doc = await db.products.find_one({"_id": product_id})
    return doc["stock"], doc.get("held", {})


async def bought_gift(api: Api, pay_fake, key: str, *lines: tuple[str, int], **fields: Any) -> str:
    """An order made, paid at the fake, its notify applied: the gift is open. Its order id."""
    status, created = await order(api, key, *lines, **fields)
    assert status == 201, created
    [delivery] = await pay_fake.pay(created["order_id"])
    assert delivery.status == 204, delivery
    return created["order_id"]


# -- The same in the domain, without HTTP (tests/lottery/) ----------------------------------------

async def listed(db, name: str = "咖啡券", price: int = 2800, stock: int = 100) -> str:
    """A product on sale, added by the catalogue itself. Its id."""
    return (await Catalogue(db).add_product(ProductSpec(name, price, stock)))["_id"]


async def paid_gift(orders: Orders, pay_fake, buyer_id: str, *lines: tuple[str, int], method: str = "direct",
                    **fields: Any) -> str:
    """An order made by `orders`, paid at the fake, and its payment applied as the notify route
    applies it (the transaction as WeChat Pay reports it): the gift is open. Its order id."""
    order, _, _ = await orders.create(buyer_id, OrderSpec([OrderLine(p, q) for p, q in lines], method, **fields))
    await pay_fake.pay(order["_id"], notify=False)
    assert await orders.settle(await orders.gateway.query_by_out_trade_no(order["_id"])) == "paid"
    return order["_id"]


def verified(payments, deliveries, expect: str = "transaction") -> list[dict]:
    """What the notify routes pass on of WeChat Pay's notifies: each one's resource, verified and
    decrypted by our client."""
    return [payments.verify_notify(d.headers, d.body, expect=expect) for d in deliveries]


async def give_address(claims: Claims, gifts: Gifts, order_id: str, member_id: str, address: dict | None = None,
                       subscribed: tuple[str, ...] = ()) -> dict:
    """The winner claims with an address (ADDRESS unless given), the gift and their join read as
    the claim route reads them."""
    gift = await gifts.get(order_id)
    join = await joins.get(gifts.db, order_id, member_id)
    return await claims.give_address(gift, join, member_id, clean_address(address or ADDRESS), list(subscribed))


ADDRESS = {"userName": "张三", "telNumber": "13800138000", "provinceName": "广东省", "cityName": "广州市",
           "countyName": "天河区", "detailInfo": "体育西路 1 号 2 栋 303", "postalCode": "510000"}


async def check_money(db) -> None:
    """The money invariant, for every order (lottery.reconciliation.money_violations, which the
    daily reconciliation checks too): what was paid = the value of the items it still gives (won
    and claimed or still claimable, or not yet given out) + refunded + refunding + registered for
    refund but not in a refund yet; nothing negative; never more refunded than paid."""
    async for gift in db.gifts.find({"order": {"$exists": True}}):
        claims = [c async for c in db.claims.find({"order_id": gift["_id"]})]
        assert money_violations(gift, claims) == [], gift["_id"]


async def drain(refunds, pay_fake, db) -> None:
    """Run refund rounds (`refunds`: a lottery.refunds.Refunds), completing each refund at WeChat
    Pay (its notify reaches the app), until every refund has ended."""
    async def ended() -> bool:
        await refunds.run_once()
        for record in await db.refunds.find({"status": "processing"}).to_list():
            if pay_fake.refunds.get(record["_id"], {}).get("status") == "PROCESSING":
                await pay_fake.complete_refund(record["_id"], "SUCCESS")
        unplanned = await db.gifts.count_documents({"order.refund_unbatched": {"$gt": 0}})
        open_ = await db.refunds.count_documents({"status": {"$in": ["pending", "sending", "processing"]}})
        return unplanned == 0 and open_ == 0
    await until(ended, timeout=60, interval=0.1)


def wechatpay_env(fake, port: int, folder) -> dict[str, str]:
    """The environment that points a server process at the WeChat Pay fake (keys in `folder`),
    its notifies to port `port`."""
    key, public = folder / "apiclient_key.pem", folder / "pub_key.pem"
    key.write_bytes(fake.merchant.private_pem)
    public.write_bytes(fake.public_key_pem)
    base = f"http://127.0.0.1:{port}/api/payment/wechat"
    return {"WECHATPAY_MCHID": fake.mchid, "WECHATPAY_APIV3_KEY": fake.apiv3_key,
            "WECHATPAY_PRIVATE_KEY_FILE": str(key), "WECHATPAY_CERT_SERIAL": fake.merchant.serial,
            "WECHATPAY_PUBLIC_KEY_FILE": str(public), "WECHATPAY_PUBLIC_KEY_ID": fake.public_key_id,
            "WECHATPAY_API_BASE": fake.url, "WECHATPAY_NOTIFY_URL": f"{base}/notify",
            "WECHATPAY_REFUND_NOTIFY_URL": f"{base}/refund-notify"}
