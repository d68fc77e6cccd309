"""The API's contract: an OpenAPI 3.1 description of every route, served at /api/openapi.json.

tests/handlers/test_openapi.py checks it against the app's routes (every route described, every
described route served, with the same methods) and Schemathesis fuzzes the running server with
it (tests/contract/), so it cannot drift from what the server does. A new route is described
here in the same change; the shop and payment routes have their place below (SHOP_PATHS)."""
import copy
from typing import Any

from handlers.base import BaseHandler
from lottery.gifts import METHODS, STATES
from lottery.storage.notifications import STATUSES as NOTIFICATION_STATUSES
from lottery.validate import ID

JSON = "application/json"

# Building blocks


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict:
    """A JSON object with exactly these properties, all required except `optional`."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [name for name in properties if name not in optional]}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def json_content(schema: dict) -> dict:
    return {"content": {JSON: {"schema": schema}}}


STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
TIME = {"type": "string", "format": "date-time"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
IDENTIFIER = {"type": "string", "pattern": f"^{ID}$"}
ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": IDENTIFIER,
            "example": "0123456789abcdef01234567"}


def v1(summary: str, ok: dict, status: int = 200, body: dict | None = None, auth: str | None = "loginKey",
       params: list | None = None) -> dict:
    """A v1 operation: `ok` on success, the v1 error body on every client error."""
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {str(status): {"description": "success", **json_content(ok)},
                      "4XX": {"description": "refused: the error says why", **json_content(ref("Error"))}},
    }
    operation["security"] = [{auth: []}] if auth else []
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": False, **json_content(body)}
    return operation


def legacy(summary: str, body: dict, data: dict) -> dict:
    """A seed route: always HTTP 200 with the envelope `{code, message, data}`."""
    return {
        "summary": summary,
        "security": [],
        "requestBody": {"required": True, **json_content(body)},
        "responses": {"200": {"description": "the envelope; `code` says success or error",
                              **json_content(envelope(data))}},
    }


def envelope(data: dict) -> dict:
    """The seed's envelope around `data` (null on errors)."""
    return obj({"code": {"enum": ["success", "suc", "error"]}, "message": STRING, "data": nullable(data)})


def page(summary: str, params: list | None = None) -> dict:
    """An HTML page of the web front end (GET, and HEAD)."""
    answer = {"200": {"description": "the page", "content": {"text/html": {"schema": STRING}}},
              "4XX": {"description": "no such page"}}
    get = {"summary": summary, "security": [], "responses": answer}
    if params:
        get["parameters"] = params
    return {"get": get, "head": {**copy.deepcopy(get), "summary": summary + " (headers only)"}}


def static_file() -> dict:
    """A file of static/ (GET, and HEAD)."""
    get = {"summary": "A file of the web pages (static/)", "security": [],
           "parameters": [{"name": "path", "in": "path", "required": True, "schema": STRING, "example": "js/api.js"}],
           "responses": {"200": {"description": "the file"}, "304": {"description": "not modified"},
                         "4XX": {"description": "no such file"}}}
    return {"get": get, "head": {**copy.deepcopy(get), "summary": "A file's headers"}}


# What the answers hold

ITEM = obj({"name": STRING, "image": STRING})
PERSON = obj({"name": STRING, "avatar": STRING})

SCHEMAS: dict[str, dict] = {
    "Error": obj({"error": obj({"code": STRING, "message": STRING})}),
    "Item": ITEM,
    "Gift": obj({
        "order_id": IDENTIFIER, "sender": PERSON, "method": {"enum": list(METHODS)},
        "open_number": nullable(COUNT), "open_at": nullable(TIME), "deadline_at": nullable(TIME),
        "wish": STRING, "status": {"enum": ["open", "ready", "drawing", "finished"]},
        "joined_count": COUNT, "items_total": COUNT, "items_left": COUNT,
        "items": {"type": "array", "items": ref("Item")}, "seed_commitment": HEX64,
        "created_at": TIME, "opened_at": nullable(TIME), "version": COUNT,
    }),
    "Me": obj({"state": {"enum": list(STATES)}, "item": ref("Item"), "joined_at": TIME, "participant": STRING},
              optional=("item", "joined_at", "participant")),
    "GiftAndMe": obj({"gift": ref("Gift"), "me": ref("Me")}),
    "Proof": obj({
        "algorithm": STRING, "version": COUNT, "order_id": IDENTIFIER, "seed_commitment": HEX64,
        "seed": HEX64, "participants": {"type": "array", "items": STRING}, "participants_hash": STRING,
        "items": {"type": "array", "items": STRING}, "items_hash": STRING,
        "winners": {"type": "array", "items": obj({"participant": STRING, "item_index": COUNT})},
        "opened_at": nullable(TIME),
    }),
    "LegacyGift": obj({
        "member_data": PERSON,
        "methons_data": obj({"get_method": {"enum": ["直接送礼", "满人开奖", "定时开奖"]},
                             "open_number": COUNT, "opentime": STRING}),
        "order_data": obj({"order_id": IDENTIFIER, "memo": STRING, "items_total": COUNT, "items_left": COUNT,
                           "joined_count": COUNT, "status": STRING}),
        "item": ref("Item"),
    }, optional=("item",)),
    "Profile": obj({"nickname": STRING, "avatar_url": STRING}),
}

TEXT_LIST = {"type": "array", "maxItems": 10, "items": {"type": "string", "minLength": 1, "maxLength": 128}}
JOIN_BODY = {"type": "object", "properties": {"form_id": {"type": "string", "maxLength": 128},
                                              "subscribed": TEXT_LIST}}

# The routes, by module (handlers/<module>.py)

LEGACY_PATHS = {
    "/api/member/code/login": {"post": legacy(
        "Sign in with the code from wx.login", obj({"code": {"type": "string", "minLength": 1, "maxLength": 128}}),
        obj({"login_key": STRING}))},
    "/api/sharagift/checkHasJoin": {"post": legacy(
        "Whether the member may join (suc: opened; error: cannot; success: may)",
        {"type": "object", "required": ["login_key", "order_id"],
         "properties": {"login_key": STRING, "order_id": IDENTIFIER}},
        ref("LegacyGift"))},
    "/api/sharagift/JoinGift": {"post": legacy(
        "Join (success: joined and waiting; suc: a direct gift's item is yours)",
        {"type": "object", "required": ["login_key", "order_id"],
         "properties": {"login_key": STRING, "order_id": IDENTIFIER, **JOIN_BODY["properties"]}},
        ref("LegacyGift"))},
    "/api/member/code/getUserInfo": {"post": legacy(
        "Store the profile from wx.getUserInfo's encrypted data",
        {"type": "object", "required": ["login_key", "iv", "encryptedData"],
         "properties": {"login_key": STRING, "iv": STRING, "encryptedData": STRING}},
        PERSON)},
}

V1_PATHS = {
    "/api/v1/gifts/{order_id}": {"get": v1("The gift and the member's state in it", ref("GiftAndMe"),
                                           params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/join": {"post": v1(
        "Join", obj({"me": ref("Me"), "gift": obj({"order_id": IDENTIFIER, "version": COUNT, "joined_count": COUNT,
                                                    "status": STRING})}),
        body=JOIN_BODY, params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/open": {"post": v1("The sender opens a full or timed gift now", ref("GiftAndMe"),
                                                 params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/proof": {"get": v1("The fairness proof of an opened gift", ref("Proof"),
                                                 auth=None, params=[ORDER_ID])},
    "/api/v1/me/profile": {"post": v1(
        "Set the member's nickname and/or avatar", ref("Profile"),
        body={"type": "object", "properties": {"nickname": {"type": "string"}, "avatar_url": {"type": "string"}}})},
}

ADMIN_PATHS = {
    "/api/admin/gifts": {"post": v1(
        "Create a paid gift", obj({"order_id": IDENTIFIER, "seed_commitment": HEX64}), status=201, auth="adminToken",
        body={"type": "object", "required": ["sender_openid", "method", "items"], "properties": {
            "sender_openid": {"type": "string", "minLength": 1, "maxLength": 128},
            "method": {"enum": list(METHODS)},
            "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 50},
                               "image": {"type": "string", "maxLength": 500}}}},
            "open_number": {"type": "integer", "minimum": 1, "maximum": 10000},
            "open_at": {"type": "string", "format": "date-time"},
            "wish": {"type": "string", "maxLength": 100},
            "deadline_hours": {"type": "integer", "minimum": 1, "maximum": 720},
            "sender_subscribed": TEXT_LIST}})},
    "/api/admin/notifications": {"get": v1(
        "Support's view of a gift's notifications",
        obj({"order_id": IDENTIFIER, "counts": {"type": "object", "additionalProperties": COUNT},
             "opened_record": nullable(obj({"status": nullable(STRING), "created_at": nullable(TIME),
                                            "done_at": nullable(TIME)})),
             "entries": {"type": "array", "items": obj({
                 "id": STRING, "member_id": STRING, "kind": STRING, "status": {"enum": list(NOTIFICATION_STATUSES)},
                 "template_id": STRING, "attempts": COUNT, "next_attempt_at": nullable(TIME),
                 "last_error": nullable(STRING), "sent_at": nullable(TIME), "created_at": nullable(TIME),
                 "updated_at": nullable(TIME)})}}),
        auth="adminToken",
        params=[{"name": "order_id", "in": "query", "required": True, "schema": IDENTIFIER},
                {"name": "status", "in": "query", "schema": {"enum": list(NOTIFICATION_STATUSES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}])},
}

PAGES_PATHS = {
    "/": page("The landing page"),
    "/gift/{order_id}": page("A gift's join page", [ORDER_ID]),
    "/gift/{order_id}/{view}": page("A gift's waiting, result, proof or sender page", [
        ORDER_ID, {"name": "view", "in": "path", "required": True,
                   "schema": {"enum": ["wait", "result", "proof", "mine"]}}]),
    "/static/{path}": static_file(),
    "/api/site": {"get": v1("What the pages need to know: development mode and its demo gifts", obj({
        "dev": {"type": "boolean"}, "demo_sender": STRING,
        "demo_gifts": {"type": "array", "items": obj({"order_id": IDENTIFIER, "method": {"enum": list(METHODS)},
                                                       "label": STRING})}}), auth=None)},
    "/api/dev/login": {"post": v1(
        "Development sign-in by name (only with --dev; 404 otherwise)", obj({"login_key": STRING, "name": STRING}),
        auth=None, body={"type": "object", "required": ["name"],
                         "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 20}}})},
    "/api/v1/gifts/{order_id}/winners": {"get": v1("Who won what, names masked (public)", obj({
        "order_id": IDENTIFIER, "method": {"enum": list(METHODS)}, "status": STRING, "participant_count": COUNT,
        "winners": {"type": "array", "items": obj({"name": STRING, "avatar": STRING, "item": ref("Item")})}},
        optional=("participant_count",)), auth=None, params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/participants": {"get": v1("Who joined, for the gift's sender", obj({
        "order_id": IDENTIFIER, "joined_count": COUNT,
        "participants": {"type": "array", "items": obj({
            "name": STRING, "avatar": STRING, "joined_at": TIME,
            "outcome": {"enum": ["won", "lost", None]}})}}), params=[ORDER_ID])},
}

HEALTH_PATHS = {
    "/healthz": {"get": {
        "summary": "200 while the database answers, 503 otherwise", "security": [],
        "responses": {"200": {"description": "healthy", **json_content(obj({"status": {"const": "ok"}}))},
                      "503": {"description": "the database does not answer",
                              **json_content(obj({"status": {"const": "database unavailable"}}))}}}},
}

REALTIME_PATHS = {
    "/ws": {"get": {
        "summary": "The realtime channel: a websocket of JSON text frames (docs/realtime.md); "
                   "`?login_key=` or an `auth` frame",
        "security": [],
        "parameters": [{"name": "login_key", "in": "query", "schema": STRING}],
        "responses": {"101": {"description": "upgraded to a websocket"},
                      "4XX": {"description": "not a websocket handshake, or a browser origin not allowed"}}}},
}

CONTRACT_PATHS = {
    "/api/openapi.json": {"get": {
        "summary": "This description", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.1", **json_content({"type": "object"})}}}},
}

# The shop and payment routes (handlers/shop.py, handlers/payments.py) are described here when
# they land: products and orders as v1 operations, WeChat Pay's notify routes with their own
# answer ({"code": "SUCCESS"|"FAIL", "message"}), and their schemas added to SCHEMAS.
SHOP_PATHS: dict[str, dict] = {}


def description() -> dict:
    """The whole OpenAPI 3.1 document."""
    paths = {**LEGACY_PATHS, **V1_PATHS, **ADMIN_PATHS, **PAGES_PATHS, **HEALTH_PATHS, **REALTIME_PATHS,
             **CONTRACT_PATHS, **SHOP_PATHS}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gift lottery", "version": "1",
                 "description": "The seed mini-program's routes (always HTTP 200 with `{code, message, data}`), "
                                "the v1 API (real status codes, `{error: {code, message}}`), admin, the pages' "
                                "own API, health and the realtime channel. README.md explains each."},
        "paths": copy.deepcopy(paths),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "loginKey": {"type": "http", "scheme": "bearer",
                             "description": "a login key from /api/member/code/login"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"},
            },
        },
    }


class OpenApiHandler(BaseHandler):
    async def prepare(self) -> None:
        self.current_user = None  # public, no login

    def get(self) -> None:
        """The OpenAPI 3.1 description of every route."""
        self.reply(self.settings.setdefault("openapi", description()))


default_handlers = [
    (r"/api/openapi.json", OpenApiHandler),
]
