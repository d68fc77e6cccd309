"""The catalogue: the operator manages it, anyone reads it (v1 and the seed's routes), a page at
a time; prices are integers in fen and a price change never alters an order already made."""
import pytest

from tests.shop import category, product


@pytest.mark.gen_test
async def test_the_operator_builds_a_catalogue_that_anyone_reads(api):
    snacks = await category(api, "零食", sort=2)
    gifts = await category(api, "礼盒", sort=1)
    coffee = await product(api, "咖啡券", 2800, 10, category_id=snacks, images=["/static/img/products/coffee.svg"],
                           description="一杯咖啡")
    status, answer = await api.request("GET", "/api/v1/categories")
    assert status == 200 and [c["name"] for c in answer["categories"]] == ["礼盒", "零食"]
    assert {c["category_id"] for c in answer["categories"]} == {snacks, gifts}
    status, answer = await api.request("GET", f"/api/v1/products/{coffee}")
    assert status == 200 and answer == {
        "product_id": coffee, "name": "咖啡券", "price": 2800, "stock": 10, "category_id": snacks,
        "images": ["/static/img/products/coffee.svg"], "description": "一杯咖啡", "on_sale": True}
    status, answer = await api.request("GET", f"/api/v1/products?category={gifts}")
    assert status == 200 and answer == {"products": [], "next_cursor": None}


@pytest.mark.gen_test
async def test_lists_come_a_page_at_a_time_with_a_cursor(api):
    made = {await product(api, f"商品{i}", 100 + i, 5) for i in range(25)}
    status, first = await api.request("GET", "/api/v1/products")
    assert status == 200 and len(first["products"]) == 20 and first["next_cursor"]
    status, second = await api.request("GET", f"/api/v1/products?cursor={first['next_cursor']}")
    assert status == 200 and len(second["products"]) == 5 and second["next_cursor"] is None
    assert {p["product_id"] for p in first["products"] + second["products"]} == made


@pytest.mark.gen_test
async def test_the_seeds_catalogue_routes_answer_the_envelope(api):
    snacks = await category(api, "零食")
    tea = await product(api, "奶茶券", 1800, 3, category_id=snacks)
    for method in ("GET", "POST"):
        status, answer = await api.request(method, "/api/indexlist/categoryList", {} if method == "POST" else None)
        assert status == 200 and answer["code"] == "success" and answer["data"][0]["category_id"] == snacks
    answer = await api.legacy("/api/indexlist/IndexProductList", {})
    assert answer["code"] == "success" and [p["product_id"] for p in answer["data"]["products"]] == [tea]
    answer = await api.legacy("/api/indexlist/categoryProductsList", {"category_id": snacks})
    assert [p["name"] for p in answer["data"]["products"]] == ["奶茶券"]
    answer = await api.legacy("/api/indexlist/detailProduct", {"product_id": tea})
    assert answer["code"] == "success" and answer["data"]["price"] == 1800
    for body, message in (({"product_id": {"$ne": None}}, "参数"), ({}, "缺少参数"),
                          ({"product_id": "0123456789abcdef01234567"}, "商品不存在或已下架")):
        answer = await api.legacy("/api/indexlist/detailProduct", body)
        assert answer["code"] == "error" and message in answer["message"], (body, answer)


@pytest.mark.gen_test
async def test_a_product_taken_off_sale_is_not_shown_and_a_change_is_the_operators_alone(api):
    cup = await product(api, "保温杯", 12900, 5)
    status, _ = await api.request("PATCH", f"/api/admin/products/{cup}", {"on_sale": False})
    assert status == 403  # no admin token
    status, changed = await api.request("PATCH", f"/api/admin/products/{cup}", {"on_sale": False, "price": 9900},
                                        token=api.admin_token)
    assert status == 200 and changed["on_sale"] is False and changed["price"] == 9900
    assert (await api.request("GET", f"/api/v1/products/{cup}"))[0] == 404
    assert (await api.request("GET", "/api/v1/products"))[1]["products"] == []


@pytest.mark.gen_test
async def test_catalogue_answers_may_be_cached_and_admin_answers_may_not(api):
    await product(api, "红包封面", 600, 10)
    response = await api.http.fetch(api.base_url + "/api/v1/products")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    response = await api.http.fetch(api.base_url + "/api/admin/products", method="POST", raise_error=False,
                                    body=b"{}", headers={"Authorization": f"Bearer {api.admin_token}"})
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_catalogue_errors_are_never_cached(api):
    # v1: a 404 for a product that is not there, a 400 for a malformed query; the seed's route:
    # its envelope's error (HTTP 200) is an error all the same.
    for method, path, body in (("GET", "/api/v1/products/nosuchproduct", None),
                               ("GET", "/api/v1/products?cursor=a&cursor=b", None),
                               ("POST", "/api/indexlist/detailProduct", b'{"product_id": "nosuchproduct"}')):
        response = await api.http.fetch(api.base_url + path, method=method, body=body, raise_error=False)
        assert response.code in (200, 400, 404), path
        assert response.headers["Cache-Control"] == "no-store", path


@pytest.mark.gen_test
@pytest.mark.parametrize("body", [
    {"price": 100, "stock": 1},  # no name
    {"name": "A", "price": 1.5, "stock": 1},  # fen are whole numbers
    {"name": "A", "price": 0, "stock": 1},
    {"name": "A", "price": "100", "stock": 1},
    {"name": "A", "price": 100, "stock": -1},
    {"name": "A", "price": 100, "stock": 1, "images": "x.png"},
    {"name": "A", "price": 100, "stock": 1, "images": ["javascript:alert(1)"]},
    {"name": "A", "price": 100, "stock": 1, "category_id": "0123456789abcdef"},
    {"name": {"$ne": None}, "price": 100, "stock": 1},
    {"name": "A", "price": 100, "stock": 1, "on_sale": "yes"},
])
async def test_bad_products_are_refused_and_nothing_is_stored(api, db, body):
    status, answer = await api.request("POST", "/api/admin/products", body, token=api.admin_token)
    assert status in (400, 404) and answer["error"]["code"] in ("invalid_input", "missing_params", "category_not_found")
    assert await db.products.count_documents({}) == 0


@pytest.mark.gen_test
@pytest.mark.parametrize("change", [{"description": 5}, {"description": ["x"]}, {"description": "x" * 2001},
                                    {"name": 5}, {"price": "100"}, {"on_sale": "no"}])
async def test_a_bad_field_in_a_product_change_is_refused_not_ignored(api, db, change):
    cup = await product(api, "保温杯", 12900, 5, description="不锈钢")
    status, answer = await api.request("PATCH", f"/api/admin/products/{cup}", {"price": 9900, **change},
                                       token=api.admin_token)
    assert status == 400 and answer["error"]["code"] == "invalid_input", answer
    stored = await db.products.find_one({"_id": cup})
    assert (stored["price"], stored["description"]) == (12900, "不锈钢")
    status, changed = await api.request("PATCH", f"/api/admin/products/{cup}", {"description": ""},
                                        token=api.admin_token)
    assert status == 200 and changed["description"] == ""  # a description may be cleared


@pytest.mark.gen_test
async def test_without_wechat_pay_an_order_says_payments_are_not_configured(api, db):
    tea = await product(api, "奶茶券", 1800, 5)
    status, answer = await api.request("POST", "/api/v1/orders", {"items": [{"product_id": tea, "quantity": 1}],
                                                                  "method": "direct"}, token=await api.login("b"))
    assert status == 503 and answer["error"] == {"code": "payments_not_configured", "message": "支付暂未开通"}
    assert await db.gifts.count_documents({}) == 0
