"""The catalogue, public (handlers/shop.py): the v1 routes and the seed's four, whose fields come
in the query (GET) or the JSON body (POST)."""
from handlers.openapi.blocks import (BOOLEAN, IDENTIFIER, PRODUCT_ID, STRING, array, integer,
                                     legacy_get_or_post, nullable, obj, or_blank, query, ref, v1)
from lottery.catalogue import MAX_IMAGES, MAX_PRICE, MAX_STOCK

SCHEMAS: dict[str, dict] = {
    "Category": obj({"category_id": IDENTIFIER, "name": STRING, "sort": {"type": "integer"}}),
    "Product": obj({"product_id": IDENTIFIER, "name": STRING, "price": integer(1, MAX_PRICE),
                    "stock": integer(0, MAX_STOCK), "category_id": nullable(IDENTIFIER),
                    "images": array(STRING, maxItems=MAX_IMAGES), "description": STRING, "on_sale": BOOLEAN}),
    "ProductPage": obj({"products": array(ref("Product"), maxItems=20),
                        "next_cursor": nullable(IDENTIFIER)}),
}

CURSOR = {"description": "next_cursor of the page before", **IDENTIFIER}


PATHS = {
    "/api/v1/categories": {"get": v1("Every category", obj({"categories": array(ref("Category"))}), auth=None)},
    "/api/v1/products": {"get": v1(
        "Products on sale (of a category), 20 a page", ref("ProductPage"), auth=None,
        params=[query("category", or_blank(IDENTIFIER)), query("cursor", or_blank(CURSOR))])},
    "/api/v1/products/{product_id}": {"get": v1("A product on sale (404 otherwise)", ref("Product"),
                                                auth=None, params=[PRODUCT_ID])},
    "/api/indexlist/categoryList": legacy_get_or_post("Every category", {}, (), array(ref("Category"))),
    "/api/indexlist/IndexProductList": legacy_get_or_post(
        "Every product on sale, 20 a page", {"cursor": CURSOR}, (), ref("ProductPage")),
    "/api/indexlist/categoryProductsList": legacy_get_or_post(
        "A category's products on sale, 20 a page", {"category_id": IDENTIFIER, "cursor": CURSOR},
        ("category_id",), ref("ProductPage")),
    "/api/indexlist/detailProduct": legacy_get_or_post(
        "A product on sale", {"product_id": IDENTIFIER}, ("product_id",), ref("Product")),
}
