"""The console's forms under hostile input, over real HTTP with a real session and its XSRF token:
every form answers a clear 4xx page (never a 5xx) and changes nothing, whatever it is sent:
over-long or control-character text, a field twice, bytes that are not UTF-8, numbers that are
not numbers, unknown or malformed ids, unknown actions, files that are not images or too large,
CSVs that are not CSVs. And the bearer-token API's actions are audited once, as "api-token"."""
import re
import uuid
from urllib.parse import quote_from_bytes

import pytest

from lottery.operators import Operators

PASSWORD = "owner-password-1"
CLAIM = "0123456789abcdef01234567:0"
UNKNOWN = "0123456789abcdef01234567"


class Console:
    """A browser's side of the console: its cookies and the page's XSRF token."""

    def __init__(self, api) -> None:
        self.api = api
        self.cookies: dict[str, str] = {}
        self.xsrf = ""

    def keep(self, response_headers) -> None:
        for header in response_headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]

    async def fetch(self, method: str, path: str, body: bytes | None = None, content_type: str = ""):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if content_type:
            headers["Content-Type"] = content_type
        from tornado.httpclient import HTTPRequest
        response = await self.api.http.fetch(HTTPRequest(
            self.api.base_url + path, method=method, body=body if method == "POST" else None, headers=headers,
            follow_redirects=False, request_timeout=60), raise_error=False)
        self.keep(response.headers)
        return response.code, (response.body or b"").decode("utf-8", "replace")

    async def page(self, path: str) -> str:
        status, text = await self.fetch("GET", path)
        assert status == 200, (path, status, text[:300])
        found = re.search(r'name="_xsrf" value="([^"]+)"', text)
        if found:
            self.xsrf = found.group(1)
        return text

    async def post(self, path: str, fields: list[tuple[str, bytes | str]]):
        """A urlencoded form with the page's token first."""
        pairs = [("_xsrf", self.xsrf), *fields]
        body = "&".join(f"{name}={quote_from_bytes(value.encode() if isinstance(value, str) else value)}"
                        for name, value in pairs).encode()
        return await self.fetch("POST", path, body, "application/x-www-form-urlencoded")

    async def upload(self, path: str, fields: list[tuple[str, str]], files: list[tuple[str, bytes]]):
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'.encode()
                 for n, v in [("_xsrf", self.xsrf), *fields]]
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"; filename="x"\r\n'
                  f'Content-Type: image/png\r\n\r\n'.encode() + data + b"\r\n" for n, data in files]
        return await self.fetch("POST", path, b"".join(parts) + f"--{boundary}--\r\n".encode(),
                                f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def console(api, db, io_loop):
    async def signed_in() -> Console:
        await Operators(db).create("boss", PASSWORD, "owner")
        client = Console(api)
        await client.page("/admin/login")
        status, _ = await client.post("/admin/login", [("name", "boss"), ("password", PASSWORD)])
        assert status == 303 and "console_session" in client.cookies
        await client.page("/admin")
        return client
    return io_loop.run_sync(signed_in)


LONG = "长" * 3000
HOSTILE_TEXT = [LONG, "a\x00b", "a\x1bb", b"\xff\xfe", "$ne"]
NUMBERS = ["１２", "1e3", "99999999999", "12.345", "0x10", "NaN", "--1"]


def forms(product_id: str, operator_id: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every console form with its usual fields (the test spoils one at a time)."""
    return [
        ("/admin/login", [("name", "boss"), ("password", PASSWORD)]),
        ("/admin/catalogue/categories", [("name", "零食"), ("sort", "1")]),
        ("/admin/catalogue/products", [("name", "杯子"), ("price", "12.30"), ("stock", "5"), ("category_id", ""),
                                       ("image_url", ""), ("description", "好")]),
        (f"/admin/catalogue/products/{product_id}", [("name", "杯子"), ("price", "12.30"), ("stock", "5"),
                                                     ("images", ""), ("description", ""), ("category_id", "")]),
        (f"/admin/claims/{CLAIM}/ship", [("carrier", "顺丰"), ("tracking_no", "SF1")]),
        (f"/admin/claims/{CLAIM}/refund", [("reason", "缺货")]),
        (f"/admin/claims/{CLAIM}/delivered", []),
        (f"/admin/orders/{UNKNOWN}/query", []),
        (f"/admin/gifts/{UNKNOWN}/draw", []),
        ("/admin/accounts", [("name", "clerk"), ("role", "staff")]),
        (f"/admin/accounts/{operator_id}", [("action", "role"), ("role", "staff")]),
        ("/admin/me", [("action", "password"), ("current", PASSWORD), ("new", "another-password")]),
    ]


async def snapshot(db) -> dict:
    return {name: await db[name].count_documents({}) for name in
            ("categories", "products", "operators", "operator_sessions", "audit")} | {
        "product": await db.products.find_one({}, {"updated_at": 0}),
        "roles": [o["role"] for o in await db.operators.find().to_list()]}


@pytest.mark.gen_test(timeout=120)
async def test_every_form_refuses_hostile_input_with_a_clear_4xx_and_changes_nothing(console, db):
    status, _ = await console.post("/admin/catalogue/products", [("name", "原来的"), ("price", "1"), ("stock", "1")])
    assert status == 303
    product_id = (await db.products.find_one({}))["_id"]
    other = await Operators(db).create("other", PASSWORD, "owner")
    await console.page("/admin/accounts")
    before = await snapshot(db)
    tried = 0
    for path, fields in forms(product_id, other["operator_id"]):
        spoiled: list[list[tuple[str, str | bytes]]] = []
        for index, (name, _) in enumerate(fields):
            for bad in HOSTILE_TEXT + (NUMBERS if name in ("price", "stock", "sort") else []):
                if name in ("name", "description", "images") and bad in ("$ne",):
                    continue  # plain text there (a name may be "$ne"): not hostile, just odd
                spoiled.append(fields[:index] + [(name, bad)] + fields[index + 1:])
            spoiled.append(fields + [(name, "twice")])  # a field given twice
        spoiled.append(fields + [("action", "explode")] if "action" in dict(fields) else [("action", "explode")])
        for attempt in spoiled:
            if path.endswith(("/delivered", "/query", "/draw", "/ship", "/refund")) or attempt != fields:
                status, text = await console.post(path, attempt)
                tried += 1
                assert 400 <= status < 500, (path, attempt, status, text[-400:])
                assert 'id="error"' in text, (path, attempt, text[-400:])
    # Malformed ids in the path never reach a handler; unknown ones are a 404 page.
    for path in ("/admin/claims/nope/ship", "/admin/catalogue/products/%24ne", f"/admin/orders/{'x' * 65}/query"):
        status, _ = await console.post(path, [])
        assert status == 404, path
    assert (await console.post(f"/admin/catalogue/products/{UNKNOWN}", forms(UNKNOWN, "x")[2][1]))[0] == 404
    assert await snapshot(db) == before, "a refused form changed something"
    assert tried > 150


@pytest.mark.gen_test(timeout=60)
async def test_uploads_are_refused_unless_one_image_of_a_kept_type_and_size_and_a_bad_csv_applies_nothing(console, db):
    await console.post("/admin/catalogue/products", [("name", "杯子"), ("price", "1"), ("stock", "1")])
    product_id = (await db.products.find_one({}))["_id"]
    path = f"/admin/catalogue/products/{product_id}"
    png = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 40
    for files in ([], [("image", png), ("image", png)], [("image", b"<svg/>")], [("image", b"")],
                  [("image", png + b"\x00" * 900 * 1024)], [("other", png)]):
        status, text = await console.upload(path, [("action", "upload")], files)
        assert 400 <= status < 500 and 'id="error"' in text, (len(files), status)
    assert (await db.products.find_one({"_id": product_id}))["images"] == []
    status, _ = await console.upload(path, [("action", "upload")], [("image", png)])
    assert status == 303
    assert (await db.products.find_one({"_id": product_id}))["images"][0].startswith("/media/")

    for csv_body in (b"\xff\xfe\x00garbage", b"", b"id,who\n1,2\n", b"claim_id,carrier,tracking_no\n",
                     b"claim_id,carrier,tracking_no\n=cmd|' /C calc'!A0,x,y\n",
                     b"claim_id,carrier,tracking_no\n" + b"a:1,b,c\n" * 600):
        status, text = await console.upload("/admin/shipping/upload", [], [("file", csv_body)])
        assert status == 400 and 'id="report-errors"' in text, (csv_body[:40], status)
    assert await db.audit.count_documents({"action": "claim.ship"}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_the_bearer_apis_actions_are_audited_once_as_the_api_token_with_before_and_after(api, db):
    status, made = await api.request("POST", "/api/admin/products", {"name": "咖啡", "price": 100, "stock": 3},
                                     token=api.admin_token)
    assert status == 201, made
    status, _ = await api.request("PATCH", f"/api/admin/products/{made['product_id']}", {"price": 250},
                                  token=api.admin_token, headers={"X-Request-Id": "script-42"})
    assert status == 200
    status, _ = await api.request("PATCH", f"/api/admin/products/{made['product_id']}", {"price": 0},
                                  token=api.admin_token)
    assert status == 400  # refused: nothing recorded
    entries = await db.audit.find({"target": f"product:{made['product_id']}"}).sort("_id", 1).to_list()
    assert [(e["who"], e["action"]) for e in entries] == [("api-token", "product.create"),
                                                          ("api-token", "product.change")]
    assert (entries[1]["before"], entries[1]["after"], entries[1]["request_id"]) == (
        {"price": 100}, {"price": 250}, "script-42")
