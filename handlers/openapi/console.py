"""The operator's console (handlers/console.py, handlers/console_shop.py): HTML pages and HTML
forms under /admin, with the `console_session` cookie. A page without a live session answers 303
to /admin/login; a form answers 303 to its page when done, 403 without the page's XSRF token
(`_xsrf`) or for staff on an owner's form, and other 4xx with the refusal as a page. Uploaded
images are served at /media/."""
import copy

from handlers.openapi.blocks import IDENTIFIER, ORDER_ID, PRODUCT_ID, STRING, path_id, query, ref, text

HTML = {"text/html": {"schema": STRING}}
CLAIM_ID = path_id("claim_id", {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}:[0-9]{1,4}$"},
                   "0123456789abcdef01234567:0")
OPERATOR_ID = path_id("operator_id", IDENTIFIER, "0123456789abcdef")
XSRF = {"type": "string", "description": "the page's XSRF token (Tornado's `_xsrf`), matching its cookie"}
# A refusal is a page; a path that matches no console route gets the API's JSON 404.
ANSWERS = {"303": {"description": "to the sign-in page without a session; after a form, to its page"},
           "4XX": {"description": "refused: the page says why (a path no route matches: the JSON 404)",
                   "content": {**HTML, "application/json": {"schema": ref("Error")}}},
           "503": {"description": "the database is unreachable", "content": HTML}}


def console_page(summary: str, params: list | None = None, csv: bool = False) -> dict:
    """A console page (GET)."""
    ok = {"description": "the page", "content": {"text/csv": {"schema": STRING}} if csv else HTML}
    get = {"summary": summary, "security": [], "responses": {"200": ok, **copy.deepcopy(ANSWERS)}}
    if params:
        get["parameters"] = params
    return {"get": get}


def form(summary: str, fields: dict[str, dict], required: tuple[str, ...] = (), params: list | None = None,
         multipart: bool = False, ok: str | None = None) -> dict:
    """A console form (POST): its fields, `_xsrf` always required."""
    schema = {"type": "object", "required": ["_xsrf", *required], "properties": {"_xsrf": XSRF, **fields}}
    media = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    responses = copy.deepcopy(ANSWERS)
    if ok:
        responses = {ok: {"description": "the page with the outcome", "content": HTML}, **responses}
    post = {"summary": summary, "security": [], "responses": responses,
            "requestBody": {"required": True, "content": {media: {"schema": schema}}}}
    if params:
        post["parameters"] = params
    return {"post": post}


def with_form(page: dict, posted: dict) -> dict:
    return {**page, **posted}


FILE = {"type": "string", "format": "binary"}
CURSOR = query("cursor", STRING)

PATHS = {
    "/admin": console_page("Today: orders and money today and this week, gifts open and due, prizes to ship, "
                           "refunds pending or failed, failed notifications, yesterday's reconciliation"),
    "/admin/login": with_form(
        console_page("The sign-in form", [query("next", STRING)]),
        form("Sign in: a session cookie, then 303 to `next`; 401 wrong name, password or TOTP code; 429 too many "
             "attempts for the account or the address", {"name": text(0, 64), "password": text(0, 256),
                                                         "code": text(0, 16), "next": STRING}, ok="200")),
    "/admin/logout": form("Sign out: the session ends on the server", {}),
    "/admin/me": with_form(
        console_page("My account: password; TOTP for owners"),
        form("`action=password` (current, new) or `action=totp` (secret, code)",
             {"action": {"enum": ["password", "totp"]}, "current": STRING, "new": STRING, "secret": STRING,
              "code": STRING}, ("action",))),
    "/admin/accounts": with_form(
        console_page("Accounts (owners)"),
        form("Invite an account (owners): its first password shown once", {"name": text(3, 32),
                                                                            "role": {"enum": ["owner", "staff"]}},
             ("name", "role"), ok="201")),
    "/admin/accounts/{operator_id}": form(
        "Change an account's role, disable or enable it (owners); disabling ends its sessions",
        {"action": {"enum": ["role", "disable", "enable"]}, "role": {"enum": ["owner", "staff"]}}, ("action",),
        [OPERATOR_ID]),
    "/admin/audit": console_page("The audit log (owners), newest first", [CURSOR]),
    "/admin/catalogue": console_page("Categories and every product", [CURSOR]),
    "/admin/catalogue/categories": form("A new category", {"name": text(1, 50), "sort": STRING}, ("name",)),
    "/admin/catalogue/products": form(
        "A new product (price in yuan)", {"name": text(1, 50), "price": STRING, "stock": STRING, "category_id": STRING,
                                          "image_url": STRING, "description": STRING, "on_sale": STRING},
        ("name", "price", "stock")),
    "/admin/catalogue/products/{product_id}": with_form(
        console_page("A product's form", [PRODUCT_ID]),
        form("Change a product, or `action=upload` with an image file (PNG, JPEG, GIF, WebP; 800 KB)",
             {"action": {"enum": ["upload"]}, "image": FILE, "name": text(1, 50), "price": STRING, "stock": STRING,
              "category_id": STRING, "images": STRING, "description": STRING, "on_sale": STRING},
             params=[PRODUCT_ID], multipart=True)),
    "/admin/orders": console_page("Orders by id, buyer or payment day, of a status", [
        query("order_id", STRING), query("buyer", STRING), query("date", STRING), query("status", STRING)]),
    "/admin/orders/{order_id}": console_page("An order's whole story", [ORDER_ID]),
    "/admin/orders/{order_id}/query": form("Ask WeChat Pay about the order again", {}, params=[ORDER_ID]),
    "/admin/claims/{claim_id}/refund": form("Refund a won item that will not ship, by hand (owners)",
                                            {"reason": text(1, 80)}, ("reason",), [CLAIM_ID]),
    "/admin/claims/{claim_id}/ship": form("claimed -> shipped", {"carrier": text(1, 32), "tracking_no": text(1, 64)},
                                          ("carrier", "tracking_no"), [CLAIM_ID]),
    "/admin/claims/{claim_id}/delivered": form("shipped -> delivered", {}, params=[CLAIM_ID]),
    "/admin/shipping": console_page("Prizes waiting to ship (addresses in full), shipped, delivered", [
        # Read only with a session (without, a 303 whatever it holds): claimed, shipped or delivered.
        query("status", {"type": "string", "description": "claimed (default), shipped or delivered"}), CURSOR]),
    "/admin/shipping/packing-list": console_page("The packing list to print", [CURSOR]),
    "/admin/shipping/claimed.csv": console_page("The claims waiting to ship as CSV (formula cells made text)",
                                                [CURSOR], csv=True),
    "/admin/shipping/upload": form(
        "A CSV of claim_id,carrier,tracking_no: every row checked, nothing applied if one is bad; the report",
        {"file": FILE}, ("file",), multipart=True, ok="200"),
    "/admin/gifts": console_page("Look up a gift", [query("order_id", STRING)]),
    "/admin/gifts/{order_id}/draw": form("Draw a due or stalled gift now (idempotent)", {}, params=[ORDER_ID]),
    "/media/{path}": {"get": {
        "summary": "An image uploaded in the console", "security": [],
        "parameters": [{"name": "path", "in": "path", "required": True, "schema": STRING,
                        "example": "0123456789abcdef0123456789abcdef.png"}],
        "responses": {"200": {"description": "the image"}, "304": {"description": "not modified"},
                      "4XX": {"description": "no such file"}}},
        "head": {"summary": "An uploaded image's headers", "security": [], "parameters": [
            {"name": "path", "in": "path", "required": True, "schema": STRING,
             "example": "0123456789abcdef0123456789abcdef.png"}],
            "responses": {"200": {"description": "the headers"}, "304": {"description": "not modified"},
                          "4XX": {"description": "no such file"}}}},
}
