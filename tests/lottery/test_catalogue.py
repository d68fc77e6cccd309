"""The catalogue in the domain, against the real database: stock never goes below zero however many
orders reserve it at once; products off sale are neither listed nor sold; prices are whole fen and
an order keeps the price it was charged; lists come a page at a time behind a cursor that reaches
every product once."""
import asyncio

import pytest

from lottery.catalogue import MAX_PRICE, PAGE_SIZE, Catalogue, ProductChange, ProductSpec
from lottery.errors import CategoryNotFound, InvalidInput, OutOfStock, ProductNotFound
from lottery.images import ImageSources
from lottery.orders import OrderLine, OrderSpec


@pytest.fixture
def catalogue(db) -> Catalogue:
    return Catalogue(db)


async def buyers(gifts, count: int) -> list[str]:
    return [await gifts.accounts.ensure_member(f"o_buyer{i}") for i in range(count)]


# -- stock -----------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=120)
async def test_stock_never_goes_below_zero_when_more_orders_than_units_reserve_at_once(db, gifts, orders, catalogue):
    cup = (await catalogue.add_product(ProductSpec("保温杯", 12900, 5)))["_id"]
    people = await buyers(gifts, 12)
    answers = await asyncio.gather(*(orders.create(b, OrderSpec([OrderLine(cup, 2)], "direct")) for b in people),
                                   return_exceptions=True)
    made = [a for a in answers if isinstance(a, tuple)]
    assert len(made) == 2 and {type(a) for a in answers if not isinstance(a, tuple)} == {OutOfStock}
    stored = await db.products.find_one({"_id": cup})
    assert stored["stock"] == 1 and sorted(stored["held"].values()) == [2, 2]
    assert set(stored["held"]) == {order["_id"] for order, _, _ in made}
    assert await db.gifts.count_documents({}) == 2  # a refused order leaves nothing behind


@pytest.mark.gen_test(timeout=60)
async def test_an_order_short_on_one_of_its_products_holds_none_of_them(db, gifts, orders, catalogue):
    cup = (await catalogue.add_product(ProductSpec("保温杯", 12900, 5)))["_id"]
    tea = (await catalogue.add_product(ProductSpec("奶茶券", 1800, 1)))["_id"]
    [buyer] = await buyers(gifts, 1)
    with pytest.raises(OutOfStock):
        await orders.create(buyer, OrderSpec([OrderLine(cup, 2), OrderLine(tea, 2)], "direct"))
    for product_id, stock in ((cup, 5), (tea, 1)):
        stored = await db.products.find_one({"_id": product_id})
        assert (stored["stock"], stored["held"]) == (stock, {})


@pytest.mark.parametrize("stock", [-1, 1_000_001, 2.5, True, "5"])
@pytest.mark.gen_test(timeout=30)
async def test_stock_is_a_whole_number_from_zero_to_a_million(db, catalogue, stock):
    with pytest.raises(InvalidInput):
        await catalogue.add_product(ProductSpec("保温杯", 12900, stock))
    product = await catalogue.add_product(ProductSpec("保温杯", 12900, 0))
    with pytest.raises(InvalidInput):
        await catalogue.change_product(product["_id"], ProductChange(stock=stock))
    assert await db.products.count_documents({}) == 1 and (await catalogue.product(product["_id"]))["stock"] == 0


# -- on sale ---------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_a_product_off_sale_is_neither_listed_nor_shown_nor_sold(db, gifts, orders, catalogue):
    shown = await catalogue.add_product(ProductSpec("保温杯", 12900, 5))
    hidden = await catalogue.add_product(ProductSpec("耳机", 19900, 5, on_sale=False))
    withdrawn = await catalogue.add_product(ProductSpec("奶茶券", 1800, 5))
    await catalogue.change_product(withdrawn["_id"], ProductChange(on_sale=False))
    assert [p["product_id"] for p in (await catalogue.page())["products"]] == [shown["_id"]]
    [buyer] = await buyers(gifts, 1)
    for product in (hidden, withdrawn):
        with pytest.raises(ProductNotFound):
            await catalogue.product(product["_id"])
        with pytest.raises(ProductNotFound):
            await orders.create(buyer, OrderSpec([OrderLine(product["_id"], 1)], "direct"))
        assert (await db.products.find_one({"_id": product["_id"]}))["stock"] == 5
    await catalogue.change_product(withdrawn["_id"], ProductChange(on_sale=True))
    assert {p["product_id"] for p in (await catalogue.page())["products"]} == {shown["_id"], withdrawn["_id"]}


@pytest.mark.gen_test(timeout=60)
async def test_what_orders_hold_is_never_shown(gifts, orders, catalogue):
    cup = (await catalogue.add_product(ProductSpec("保温杯", 12900, 5)))["_id"]
    [buyer] = await buyers(gifts, 1)
    await orders.create(buyer, OrderSpec([OrderLine(cup, 1)], "direct"))
    assert "held" not in await catalogue.product(cup)
    [listed] = (await catalogue.page())["products"]
    assert "held" not in listed and listed["stock"] == 4


# -- prices ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("price", [0, -100, MAX_PRICE + 1, 19.9, 1990.0, "1990", True, None])
@pytest.mark.gen_test(timeout=30)
async def test_a_price_is_a_whole_number_of_fen_from_one_fen_to_a_million_yuan(db, catalogue, price):
    with pytest.raises(InvalidInput):
        await catalogue.add_product(ProductSpec("保温杯", price, 5))
    product = await catalogue.add_product(ProductSpec("保温杯", MAX_PRICE, 5))
    assert (await catalogue.change_product(product["_id"], ProductChange(price=1)))["price"] == 1
    if price is not None:  # None is "unchanged"
        with pytest.raises(InvalidInput):
            await catalogue.change_product(product["_id"], ProductChange(price=price))
    assert (await catalogue.product(product["_id"]))["price"] == 1


@pytest.mark.gen_test(timeout=60)
async def test_an_order_keeps_the_price_it_was_charged_when_the_price_changes(db, gifts, orders, catalogue):
    cup = (await catalogue.add_product(ProductSpec("保温杯", 12900, 5)))["_id"]
    [buyer] = await buyers(gifts, 1)
    order, _, _ = await orders.create(buyer, OrderSpec([OrderLine(cup, 2)], "direct"))
    await catalogue.change_product(cup, ProductChange(price=9900, name="保温杯 特价"))
    stored = await db.gifts.find_one({"_id": order["_id"]})
    assert stored["order"]["amount_total"] == 2 * 12900
    assert [(line["name"], line["price"]) for line in stored["order"]["lines"]] == [("保温杯", 12900)]
    assert [item["price"] for item in stored["items"]] == [12900, 12900]


# -- lists -----------------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_the_cursor_reaches_every_product_on_sale_once_a_page_at_a_time(catalogue):
    made = {(await catalogue.add_product(ProductSpec(f"商品{i}", 100 + i, 5)))["_id"] for i in range(2 * PAGE_SIZE + 3)}
    await catalogue.add_product(ProductSpec("下架", 100, 5, on_sale=False))
    seen, cursor, sizes = [], "", []
    while True:
        page = await catalogue.page(cursor=cursor)
        sizes.append(len(page["products"]))
        seen += [p["product_id"] for p in page["products"]]
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["products"][-1]["product_id"]
        cursor = page["next_cursor"]
    assert sizes == [PAGE_SIZE, PAGE_SIZE, 3] and len(seen) == len(set(seen)) and set(seen) == made
    with pytest.raises(InvalidInput):
        await catalogue.page(cursor="not/a cursor")


@pytest.mark.gen_test(timeout=60)
async def test_a_page_of_exactly_the_page_size_has_no_next_cursor(catalogue):
    for i in range(PAGE_SIZE):
        await catalogue.add_product(ProductSpec(f"商品{i}", 100, 5))
    page = await catalogue.page()
    assert len(page["products"]) == PAGE_SIZE and page["next_cursor"] is None


@pytest.mark.gen_test(timeout=60)
async def test_a_category_lists_its_own_products_and_an_unknown_one_is_refused(catalogue):
    snacks, drinks = await catalogue.add_category("零食", sort=2), await catalogue.add_category("饮料", sort=1)
    chips = await catalogue.add_product(ProductSpec("薯片", 800, 5, category_id=snacks["_id"]))
    await catalogue.add_product(ProductSpec("奶茶券", 1800, 5, category_id=drinks["_id"]))
    assert [p["product_id"] for p in (await catalogue.page(snacks["_id"]))["products"]] == [chips["_id"]]
    assert [c["name"] for c in await catalogue.categories()] == ["饮料", "零食"]  # the operator's order
    with pytest.raises(CategoryNotFound):
        await catalogue.page("f" * 16)
    with pytest.raises(CategoryNotFound):
        await catalogue.add_product(ProductSpec("薯片", 800, 5, category_id="f" * 16))
    with pytest.raises(CategoryNotFound):
        await catalogue.change_product(chips["_id"], ProductChange(category_id="f" * 16))


# -- what the operator may write -------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_names_are_trimmed_and_images_come_only_from_allowed_hosts(db):
    catalogue = Catalogue(db, ImageSources(("img.example.com",)))
    product = await catalogue.add_product(ProductSpec("  保温杯 \n 大号 ", 12900, 5, images=[
        "https://img.example.com/a.png", "/static/b.png"]))
    assert product["name"] == "保温杯 大号" and len(product["images"]) == 2
    for bad in (ProductSpec("", 1, 1), ProductSpec("x" * 51, 1, 1), ProductSpec("a\x07b", 1, 1),
                ProductSpec("杯", 1, 1, images=["https://evil.example.com/a.png"]),
                ProductSpec("杯", 1, 1, images=["/static/../secret"]),
                ProductSpec("杯", 1, 1, images=["/static/a.png"] * 10), ProductSpec("杯", 1, 1, description="x" * 2001)):
        with pytest.raises(InvalidInput):
            await catalogue.add_product(bad)
    assert await db.products.count_documents({}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_a_change_needs_a_known_product_and_something_to_change(catalogue):
    product = await catalogue.add_product(ProductSpec("保温杯", 12900, 5))
    with pytest.raises(InvalidInput):
        await catalogue.change_product(product["_id"], ProductChange())
    with pytest.raises(ProductNotFound):
        await catalogue.change_product("f" * 24, ProductChange(price=100))
    with pytest.raises(InvalidInput):
        await catalogue.change_product("../x", ProductChange(price=100))
