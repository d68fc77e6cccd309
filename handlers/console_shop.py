"""The console's shop pages (handlers/console.py has the base): today, the catalogue, orders,
shipping and gifts. Each action goes through lottery/admin_actions.py (the domain's rule, then
one audit entry); each page reads through the domain services or lottery/dashboard.py."""
from handlers.base import ID_GROUP
from handlers.claims import CLAIM_GROUP, shipping_csv
from handlers.console import ConsoleHandler
from lottery.catalogue import MAX_PRICE, MAX_STOCK, ProductChange, ProductSpec
from lottery.errors import GiftNotFound, InvalidInput
from lottery.orders import ORDER_STATUSES

SHIPPING_TABS = ("claimed", "shipped", "delivered")


class TodayHandler(ConsoleHandler):
    async def get(self) -> None:
        """Today and this week at a glance, each figure linking to its list."""
        self.page("today.html", today=await self.dashboard.today())


class CatalogueHandler(ConsoleHandler):
    async def get(self) -> None:
        """Categories and every product (on sale or not), 50 a page."""
        self.page("catalogue.html", categories=await self.catalogue.categories(),
                  found=await self.catalogue.all_products(self.query_text("cursor")))


class CategoriesHandler(ConsoleHandler):
    async def post(self) -> None:
        """A new category: `name, sort?`."""
        await self.admin_actions.add_category(self.actor, self.field("name", 50),
                                              self.number("sort", -10000, 10000, required=False) or 0)
        self.done("/admin/catalogue", "category")


def category_or_none(value: str) -> str | None:
    return value or None


class ProductsHandler(ConsoleHandler):
    async def post(self) -> None:
        """A new product: `name, price (yuan), stock, category_id?, image_url?, description?, on_sale?`."""
        image = self.field("image_url", 512, required=False)
        product = await self.admin_actions.add_product(self.actor, ProductSpec(
            name=self.field("name", 50), price=self.fen("price"), stock=self.number("stock", 0, MAX_STOCK),
            category_id=category_or_none(self.field("category_id", 64, required=False)),
            images=[image] if image else [], description=self.field("description", 2000, required=False),
            on_sale=self.field("on_sale", 8, required=False) == "on"))
        self.done(f"/admin/catalogue/products/{product['_id']}", "product")


class ProductHandler(ConsoleHandler):
    async def get(self, product_id: str) -> None:
        """One product's form."""
        self.page("product.html", product=await self.catalogue.any_product(product_id),
                  categories=await self.catalogue.categories(), max_price=MAX_PRICE)

    async def post(self, product_id: str) -> None:
        """Change `name, price, stock, category_id, description, on_sale`, and the images (one
        https or /static/ URL a line), or `action=upload` with a file `image`."""
        if self.field("action", 16, required=False) == "upload":
            files = self.request.files.get("image", [])
            if len(files) != 1:
                raise InvalidInput("请选择一个图片文件")
            await self.admin_actions.upload_image(self.actor, product_id, files[0]["body"])
            self.done(f"/admin/catalogue/products/{product_id}", "image")
            return
        images = [line.strip() for line in self.field("images", 5000, required=False).splitlines() if line.strip()]
        await self.admin_actions.change_product(self.actor, product_id, ProductChange(
            name=self.field("name", 50), price=self.fen("price"), stock=self.number("stock", 0, MAX_STOCK),
            images=images, description=self.field("description", 2000, required=False),
            on_sale=self.field("on_sale", 8, required=False) == "on",
            category_id=category_or_none(self.field("category_id", 64, required=False))))
        self.done(f"/admin/catalogue/products/{product_id}", "product")


class OrdersHandler(ConsoleHandler):
    async def get(self) -> None:
        """Search: `?order_id=`, `?buyer=` (member id or openid), `?date=` (paid that day), and
        `?status=`; without any, the orders paid today."""
        form = {name: self.query_text(name) for name in ("order_id", "buyer", "date", "status")}
        self.page("orders.html", form=form, statuses=ORDER_STATUSES, orders=await self.dashboard.search_orders(
            form["order_id"], form["buyer"], form["date"], form["status"]))


class OrderHandler(ConsoleHandler):
    async def get(self, order_id: str) -> None:
        """An order's whole story."""
        self.page("order.html", story=await self.dashboard.order_story(order_id))


class OrderQueryHandler(ConsoleHandler):
    async def post(self, order_id: str) -> None:
        """Ask WeChat Pay about the order again (a lost notify is settled by it)."""
        await self.admin_actions.recheck_payment(self.actor, order_id)
        self.done(f"/admin/orders/{order_id}", "queried")


class ClaimRefundHandler(ConsoleHandler):
    owner_only = True

    async def post(self, claim_id: str) -> None:
        """Refund a won item that will not ship, by hand: `reason` (owners only)."""
        await self.admin_actions.refund_by_hand(self.actor, claim_id, self.field("reason", 80))
        self.done(f"/admin/orders/{claim_id.split(':')[0]}", "refund")


class ShippingHandler(ConsoleHandler):
    async def get(self) -> None:
        """`?status=claimed` (waiting, addresses in full), `shipped` or `delivered`; `&cursor=`."""
        status = self.query_text("status", 16) or "claimed"
        if status not in SHIPPING_TABS:
            raise InvalidInput("status 不正确")
        self.page("shipping.html", status=status, tabs=SHIPPING_TABS,
                  found=await self.claims.page(status, self.query_text("cursor", 80)), report=None)


class PackingListHandler(ConsoleHandler):
    async def get(self) -> None:
        """The claims waiting to ship as a page to print (`?cursor=` for the next 50)."""
        self.page("packing.html", found=await self.claims.page("claimed", self.query_text("cursor", 80)))


class ShippingCsvHandler(ConsoleHandler):
    async def get(self) -> None:
        """The claims waiting to ship as CSV (cells that would start a formula made text)."""
        found = await self.claims.page("claimed", self.query_text("cursor", 80))
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", 'attachment; filename="claims-claimed.csv"')
        self.finish(shipping_csv(found["claims"]))


class ShippingUploadHandler(ConsoleHandler):
    async def post(self) -> None:
        """A CSV of `claim_id,carrier,tracking_no`: every row checked first, nothing applied when
        one is bad; the report of what was applied."""
        files = self.request.files.get("file", [])
        if len(files) != 1:
            raise InvalidInput("请选择一个 CSV 文件")
        report = await self.admin_actions.ship_from_csv(self.actor, files[0]["body"])
        self.page("shipping.html", status="claimed", tabs=SHIPPING_TABS, report=report,
                  found=await self.claims.page("claimed"), http_status=400 if report["errors"] else 200)


class ShipHandler(ConsoleHandler):
    async def post(self, claim_id: str) -> None:
        """`carrier, tracking_no`: claimed -> shipped (one operator wins a race; the other is told)."""
        await self.admin_actions.ship(self.actor, claim_id, self.field("carrier", 32), self.field("tracking_no", 64))
        self.done("/admin/shipping", "shipped")


class DeliveredHandler(ConsoleHandler):
    async def post(self, claim_id: str) -> None:
        """shipped -> delivered."""
        await self.admin_actions.delivered(self.actor, claim_id)
        self.done("/admin/shipping?status=shipped", "delivered")


class GiftsHandler(ConsoleHandler):
    async def get(self) -> None:
        """Look up a gift by its id: participants, status, proof; reopen a stuck draw."""
        order_id = self.query_text("order_id")
        gift = None
        if order_id:
            try:
                gift = await self.gifts.get(order_id)
            except GiftNotFound:
                gift = None
        self.page("gifts.html", order_id=order_id, gift=gift)


class GiftDrawHandler(ConsoleHandler):
    async def post(self, order_id: str) -> None:
        """Draw a due or stalled gift now (idempotent: a drawn gift stays as it is)."""
        await self.admin_actions.reopen_draw(self.actor, order_id)
        self.done(f"/admin/gifts?order_id={order_id}", "draw")


default_handlers = [
    (r"/admin/?", TodayHandler),
    (r"/admin/catalogue", CatalogueHandler),
    (r"/admin/catalogue/categories", CategoriesHandler),
    (r"/admin/catalogue/products", ProductsHandler),
    (rf"/admin/catalogue/products/{ID_GROUP}", ProductHandler),
    (r"/admin/orders", OrdersHandler),
    (rf"/admin/orders/{ID_GROUP}", OrderHandler),
    (rf"/admin/orders/{ID_GROUP}/query", OrderQueryHandler),
    (rf"/admin/claims/{CLAIM_GROUP}/refund", ClaimRefundHandler),
    (rf"/admin/claims/{CLAIM_GROUP}/ship", ShipHandler),
    (rf"/admin/claims/{CLAIM_GROUP}/delivered", DeliveredHandler),
    (r"/admin/shipping", ShippingHandler),
    (r"/admin/shipping/packing-list", PackingListHandler),
    (r"/admin/shipping/claimed.csv", ShippingCsvHandler),
    (r"/admin/shipping/upload", ShippingUploadHandler),
    (r"/admin/gifts", GiftsHandler),
    (rf"/admin/gifts/{ID_GROUP}/draw", GiftDrawHandler),
]
