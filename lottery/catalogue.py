"""The shop's catalogue: categories and products, managed by the operator, read by anyone.

Prices are integers in fen, set by the operator only; an order copies the price it was charged,
so a later change never alters it. Lists are paged with an opaque cursor, never unbounded."""
import secrets
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import CategoryNotFound, InvalidInput, ProductNotFound
from lottery.gifts import IMAGE_RULE
from lottery.images import ImageSources
from lottery.storage import categories, products
from lottery.validate import check_identifier

MAX_PRICE = 100_000_000  # fen: a million yuan
MAX_STOCK = 1_000_000
MAX_IMAGES = 9
MAX_CATEGORIES = 200
PAGE_SIZE = 20


@dataclass(frozen=True)
class ProductSpec:
    """A new product."""

    name: str
    price: int
    stock: int
    category_id: str | None = None
    images: list[str] = field(default_factory=list)
    description: str = ""
    on_sale: bool = True


@dataclass(frozen=True)
class ProductChange:
    """What the operator changes of a product (None: unchanged)."""

    name: str | None = None
    price: int | None = None
    stock: int | None = None
    images: list[str] | None = None
    description: str | None = None
    on_sale: bool | None = None
    category_id: str | None = None


def product_view(product: dict) -> dict:
    """A product as anyone may see it."""
    return {"product_id": product["_id"], "name": product["name"], "price": product["price"],
            "stock": product["stock"], "category_id": product.get("category_id"),
            "images": product.get("images", []), "description": product.get("description", ""),
            "on_sale": product["on_sale"]}


def category_view(category: dict) -> dict:
    return {"category_id": category["_id"], "name": category["name"], "sort": category["sort"]}


class Catalogue:
    """Categories and products."""

    def __init__(self, db: AsyncDatabase, images: ImageSources = ImageSources()) -> None:
        self.db = db
        self.images = images

    async def add_category(self, name: str, sort: int = 0) -> dict:
        category = {"_id": secrets.token_hex(8), "name": clean_name(name), "sort": sort,
                    "created_at": clock.utcnow()}
        await categories.insert(self.db, category)
        return category

    async def categories(self) -> list[dict]:
        return [category_view(c) for c in await categories.listed(self.db, MAX_CATEGORIES)]

    async def add_product(self, spec: ProductSpec) -> dict:
        await self._check_category(spec.category_id)
        now = clock.utcnow()
        product = {"_id": secrets.token_hex(12), "name": clean_name(spec.name), "price": check_price(spec.price),
                   "stock": check_stock(spec.stock), "category_id": spec.category_id,
                   "images": check_images(spec.images, self.images), "description": check_description(spec.description),
                   "on_sale": spec.on_sale, "held": {}, "created_at": now, "updated_at": now}
        await products.insert(self.db, product)
        return product

    async def change_product(self, product_id: str, change: ProductChange) -> dict:
        """Change a product; orders already made keep the prices they were charged."""
        fields = {}
        if change.name is not None:
            fields["name"] = clean_name(change.name)
        if change.price is not None:
            fields["price"] = check_price(change.price)
        if change.stock is not None:
            fields["stock"] = check_stock(change.stock)
        if change.images is not None:
            fields["images"] = check_images(change.images, self.images)
        if change.description is not None:
            fields["description"] = check_description(change.description)
        if change.on_sale is not None:
            fields["on_sale"] = change.on_sale
        if change.category_id is not None:
            await self._check_category(change.category_id)
            fields["category_id"] = change.category_id
        if not fields:
            raise InvalidInput("没有要修改的字段")
        if not await products.update(self.db, check_identifier(product_id, "product_id"), fields, clock.utcnow()):
            raise ProductNotFound()
        return await products.get(self.db, product_id)

    async def product(self, product_id: str) -> dict:
        """A product on sale; ProductNotFound otherwise."""
        product = await products.get(self.db, check_identifier(product_id, "product_id"))
        if product is None or not product["on_sale"]:
            raise ProductNotFound()
        return product

    async def any_product(self, product_id: str) -> dict:
        """A product on sale or not (the operator's view); ProductNotFound when unknown."""
        product = await products.get(self.db, check_identifier(product_id, "product_id"))
        if product is None:
            raise ProductNotFound()
        return product

    async def all_products(self, cursor: str = "") -> dict:
        """Every product, on sale or not, a page of 50 at a time (the operator's list)."""
        after = check_identifier(cursor, "cursor") if cursor else ""
        found = await products.page_all(self.db, after, 51)
        return {"products": [product_view(p) for p in found[:50]],
                "next_cursor": found[49]["_id"] if len(found) > 50 else None}

    async def page(self, category_id: str | None = None, cursor: str = "") -> dict:
        """`{products, next_cursor}`: products on sale (of a category), a page at a time; the
        cursor of the last page is null."""
        if category_id is not None:
            await self._check_category(category_id)
        after = check_identifier(cursor, "cursor") if cursor else ""
        found = await products.on_sale_page(self.db, category_id, after, PAGE_SIZE + 1)
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        return {"products": [product_view(p) for p in found],
                "next_cursor": found[-1]["_id"] if more else None}

    async def _check_category(self, category_id: str | None) -> None:
        if category_id is not None and await categories.get(self.db, check_identifier(category_id, "category_id")) is None:
            raise CategoryNotFound()


def clean_name(value: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > 50 or any(ord(c) < 32 for c in name):
        raise InvalidInput("名称必须是 1 到 50 个字")
    return name


def check_price(price: int) -> int:
    if isinstance(price, bool) or not isinstance(price, int) or not 1 <= price <= MAX_PRICE:
        raise InvalidInput(f"price 必须是 1 到 {MAX_PRICE} 之间的整数（分）")
    return price


def check_stock(stock: int) -> int:
    if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
        raise InvalidInput(f"stock 必须是 0 到 {MAX_STOCK} 之间的整数")
    return stock


def check_images(images: list[str], sources: ImageSources) -> list[str]:
    """A product's images: a page shows them, so from where the pages may load images."""
    if len(images) > MAX_IMAGES:
        raise InvalidInput(f"images 最多 {MAX_IMAGES} 张")
    for image in images:
        if not image:
            raise InvalidInput("image 不能为空")
        if not sources.allows(image):
            raise InvalidInput(IMAGE_RULE)
    return list(images)


def check_description(text: str) -> str:
    if len(text) > 2000:
        raise InvalidInput("description 最多 2000 个字")
    return text
