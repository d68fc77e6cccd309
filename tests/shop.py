"""The shop in tests: a catalogue made through the admin API, and orders paid at the local
WeChat Pay fake."""
from typing import Any

from tests.api import Api


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
