"""Operations API for scripts, present only when ADMIN_TOKEN is set: creating gifts, support's
view of a gift's notifications, the catalogue, backups, and the daily reconciliation with WeChat
Pay. It stays beside the operator's console (handlers/console.py); every action that changes
something goes through lottery/admin_actions.py, so it is in the audit log as "api-token"."""
from handlers import params
from handlers.base import ID_GROUP, BaseHandler
from lottery.audit import API_TOKEN, Actor
from lottery.catalogue import ProductChange, ProductSpec, product_view
from lottery.errors import InvalidInput
from lottery.gifts import MAX_ITEMS, GiftSpec, Item

MAX_ENTRIES = 1000


class AdminHandler(BaseHandler):
    """Admin routes answer to the admin token, never to a member's login key."""

    async def prepare(self) -> None:
        self.current_user = None
        self.require_admin()
        self.refuse_while_database_away()

    @property
    def actor(self) -> Actor:
        """Who the audit log names: the bearer token (one for every script)."""
        return Actor(API_TOKEN, self.request_id)


def gift_spec(body: dict) -> GiftSpec:
    """A new gift from an admin request body (types here; the rules are the domain's)."""
    return GiftSpec(
        sender_openid=params.text(body, "sender_openid", 128),
        items=[Item(params.text(entry, "name", 50), params.text(entry, "image", 500, required=False),
                    **params.tier(entry)) for entry in params.objects(body, "items", MAX_ITEMS)],
        **params.opening(body))


class AdminGiftsHandler(AdminHandler):
    async def post(self) -> None:
        """Create a paid gift: `{sender_openid, method, items, open_number?, open_at?, wish?,
        deadline_hours?, sender_subscribed?}` -> 201 `{order_id, seed_commitment}`."""
        gift = await self.admin_actions.create_gift(self.actor, gift_spec(self.json_body()))
        self.reply({"order_id": gift["_id"], "seed_commitment": gift["seed_commitment"]}, status=201)


class AdminNotificationsHandler(AdminHandler):
    async def get(self) -> None:
        """`?order_id=&status=&limit=` -> `{order_id, counts, opened_record, entries}`: each
        entry's kind, status, attempts, next attempt and last error."""
        order_id = params.identifier({"order_id": self.query_value("order_id", "")}, "order_id")
        status = self.query_value("status", "") or None
        limit = params.query_integer(self.query_value("limit", "200"), "limit", 1, MAX_ENTRIES)
        self.reply(await self.notifications.for_order(order_id, status, limit))


def images(body: dict) -> list[str] | None:
    value = body.get("images")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 500 for v in value):
        raise InvalidInput("images 必须是图片地址的列表")
    return value


def settable_text(body: dict, name: str, max_len: int) -> str | None:
    """An optional string field that may be set empty (None: left out)."""
    value = body.get(name)
    if value is None:
        return None
    return params.text(body, name, max_len) if value != "" else ""


class AdminCategoriesHandler(AdminHandler):
    async def post(self) -> None:
        """`{name, sort?}` -> 201 `{category_id}`."""
        body = self.json_body()
        category = await self.admin_actions.add_category(self.actor, params.text(body, "name", 50),
                                                     params.integer(body, "sort", -10000, 10000, required=False) or 0)
        self.reply({"category_id": category["_id"]}, status=201)


class AdminProductsHandler(AdminHandler):
    async def post(self) -> None:
        """`{name, price (fen), stock, category_id?, images?, description?, on_sale?}` -> 201 `{product_id}`."""
        body = self.json_body()
        category_id = params.text(body, "category_id", 64, required=False) or None
        on_sale = params.flag(body, "on_sale")
        product = await self.admin_actions.add_product(self.actor, ProductSpec(
            name=params.text(body, "name", 50), price=params.integer(body, "price", 1, 10**8),
            stock=params.integer(body, "stock", 0, 10**6), category_id=category_id,
            images=images(body) or [], description=params.text(body, "description", 2000, required=False),
            on_sale=True if on_sale is None else on_sale))
        self.reply({"product_id": product["_id"]}, status=201)


class AdminProductHandler(AdminHandler):
    async def patch(self, product_id: str) -> None:
        """Change `name`, `price`, `stock`, `images`, `description`, `on_sale` or `category_id`;
        orders already made keep the prices they were charged."""
        body = self.json_body()
        product = await self.admin_actions.change_product(self.actor, product_id, ProductChange(
            name=params.text(body, "name", 50, required=False) or None,
            price=params.integer(body, "price", 1, 10**8, required=False),
            stock=params.integer(body, "stock", 0, 10**6, required=False),
            images=images(body), description=settable_text(body, "description", 2000),
            on_sale=params.flag(body, "on_sale"),
            category_id=params.text(body, "category_id", 64, required=False) or None))
        self.reply(product_view(product))


class AdminBackupHandler(AdminHandler):
    database_budget = 600.0  # an archive of the whole database takes as long as it takes

    async def post(self) -> None:
        """Archive the embedded engine's data now -> 201 `{path, size_bytes, taken_at}` (a file in
        `--backup_dir` on the server's host); 501 on MongoDB, which backs up with its own tools."""
        self.reply(await self.admin_actions.backup(self.actor), status=201)


class AdminReconciliationHandler(AdminHandler):
    database_budget = 300.0  # a rerun reads a whole day's orders and refunds

    async def get(self) -> None:
        """`?date=YYYY-MM-DD` -> the day's reconciliation report against WeChat Pay's bill:
        `{date, status, summary, mismatches, violations, ...}`; 404 for a day never run."""
        self.reply(await self.reconciliation.report(self.query_value("date", "")))

    async def post(self) -> None:
        """`{date}`: reconcile that day again now, replacing its report -> the new report; 409
        while a run holds the day or WeChat Pay's bill is not ready."""
        self.reply(await self.admin_actions.rerun_reconciliation(self.actor, self.json_body().get("date")))


default_handlers = [
    (r"/api/admin/gifts", AdminGiftsHandler),
    (r"/api/admin/notifications", AdminNotificationsHandler),
    (r"/api/admin/categories", AdminCategoriesHandler),
    (r"/api/admin/products", AdminProductsHandler),
    (rf"/api/admin/products/{ID_GROUP}", AdminProductHandler),
    (r"/api/admin/backup", AdminBackupHandler),
    (r"/api/admin/reconciliation", AdminReconciliationHandler),
]
