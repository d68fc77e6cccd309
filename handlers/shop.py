"""The catalogue, public: the seed's four routes (the envelope) and the v1 routes. Answers may
be cached for a minute (no login, the same for everyone)."""
from handlers import params
from handlers.base import ID_GROUP, BaseHandler, LegacyHandler
from lottery.catalogue import product_view

CACHE_SECONDS = 60


class CatalogueHandler(BaseHandler):
    """No login; cacheable."""

    async def prepare(self) -> None:
        self.refuse_while_database_away()
        self.current_user = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", f"public, max-age={CACHE_SECONDS}")

    def argument(self, name: str) -> str:
        """A query argument, or (legacy POSTs) a field of the JSON body."""
        value = self.query_value(name)
        if value is None and self.request.method == "POST":
            value = self.json_body().get(name)
        return params.text({name: value}, name, 64, required=False)


class CategoriesHandler(CatalogueHandler):
    async def get(self) -> None:
        """`{categories: [{category_id, name, sort}]}`."""
        self.reply({"categories": await self.catalogue.categories()})


class ProductsHandler(CatalogueHandler):
    async def get(self) -> None:
        """`?category=&cursor=` -> `{products, next_cursor}` (null on the last page)."""
        self.reply(await self.catalogue.page(self.argument("category") or None, self.argument("cursor")))


class ProductHandler(CatalogueHandler):
    async def get(self, product_id: str) -> None:
        """One product on sale."""
        self.reply(product_view(await self.catalogue.product(product_id)))


class LegacyCatalogueHandler(LegacyHandler, CatalogueHandler):
    """The seed's catalogue routes: GET or POST, parameters in the query or the JSON body."""

    async def post(self) -> None:
        await self.get()


class LegacyCategoryListHandler(LegacyCatalogueHandler):
    async def get(self) -> None:
        """`data: [{category_id, name, sort}]`."""
        self.reply(await self.catalogue.categories())


class LegacyIndexProductListHandler(LegacyCatalogueHandler):
    async def get(self) -> None:
        """`cursor?` -> `data: {products, next_cursor}`: every product on sale."""
        self.reply(await self.catalogue.page(None, self.argument("cursor")))


class LegacyCategoryProductsHandler(LegacyCatalogueHandler):
    async def get(self) -> None:
        """`category_id, cursor?` -> `data: {products, next_cursor}`."""
        category_id = params.identifier({"category_id": self.argument("category_id")}, "category_id")
        self.reply(await self.catalogue.page(category_id, self.argument("cursor")))


class LegacyProductDetailHandler(LegacyCatalogueHandler):
    async def get(self) -> None:
        """`product_id` -> `data: product`."""
        product_id = params.identifier({"product_id": self.argument("product_id")}, "product_id")
        self.reply(product_view(await self.catalogue.product(product_id)))


default_handlers = [
    (r"/api/v1/categories", CategoriesHandler),
    (r"/api/v1/products", ProductsHandler),
    (rf"/api/v1/products/{ID_GROUP}", ProductHandler),
    (r"/api/indexlist/categoryList", LegacyCategoryListHandler),
    (r"/api/indexlist/IndexProductList", LegacyIndexProductListHandler),
    (r"/api/indexlist/categoryProductsList", LegacyCategoryProductsHandler),
    (r"/api/indexlist/detailProduct", LegacyProductDetailHandler),
]
