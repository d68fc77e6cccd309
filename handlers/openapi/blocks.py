"""The building blocks of the description: schemas, parameters and the shapes of operations
(a v1 route, a seed route with its envelope, a page)."""
import copy
from typing import Any

from lottery.validate import ID

JSON = "application/json"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict:
    """A JSON object with exactly these properties, all required except `optional`."""
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "required": [name for name in properties if name not in optional]}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: dict, **bounds: int) -> dict:
    return {"type": "array", "items": items, **bounds}


def json_content(schema: dict) -> dict:
    return {"content": {JSON: {"schema": schema}}}


def answer(description: str, schema: dict | None = None) -> dict:
    """A response: JSON of `schema`, or no body."""
    return {"description": description, **(json_content(schema) if schema is not None else {})}


STRING = {"type": "string"}
BOOLEAN = {"type": "boolean"}
NULL = {"type": "null"}
COUNT = {"type": "integer", "minimum": 0}
FEN = {"type": "integer", "minimum": 0, "description": "an amount in fen (0.01 yuan)"}
TIME = {"type": "string", "format": "date-time"}
HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
IDENTIFIER = {"type": "string", "pattern": f"^{ID}$"}
EXAMPLE_ID = "0123456789abcdef01234567"


def text(low: int, high: int) -> dict:
    """A string of `low` to `high` characters."""
    return {"type": "string", "minLength": low, "maxLength": high}


def trimmed(high: int) -> dict:
    """Text the server trims before it counts (so no maxLength: blanks around it do not count)."""
    return {"type": "string", "minLength": 1, "description": f"1 to {high} characters once trimmed"}


def integer(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


def path_id(name: str, schema: dict = IDENTIFIER, example: str = EXAMPLE_ID) -> dict:
    """An id in the route's path."""
    return {"name": name, "in": "path", "required": True, "schema": schema, "example": example}


def query(name: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def request(properties: dict[str, dict], required: tuple[str, ...] = (), blank: bool = True) -> dict:
    """A JSON object a client sends: its `required` fields, and optional ones that may also be
    null, or (`blank`) for text empty: the server reads those as a field left out. Other fields
    are ignored."""
    return {"type": "object", "required": list(required),
            "properties": {name: schema if name in required else omissible(schema, blank)
                           for name, schema in properties.items()}}


def omissible(schema: dict, blank: bool = True) -> dict:
    """An optional field's schema: null (and, `blank`, for text "") mean the same as leaving it out."""
    blanks = [{"const": ""}] if blank and schema.get("type") == "string" else []
    return {"anyOf": [schema, {"type": "null"}, *blanks]}


def or_blank(schema: dict) -> dict:
    """An optional value that may also be empty, which means the same as leaving it out (`?cursor=`,
    `"open_at": ""`): the server reads optional fields that way."""
    return {"anyOf": [schema, {"const": ""}]}


ORDER_ID = path_id("order_id")
PRODUCT_ID = path_id("product_id")
TEXT_LIST = array(text(1, 128), maxItems=10)


def v1(summary: str, ok: dict | None, status: int = 200, body: dict | None = None, auth: str | None = "loginKey",
       params: list | None = None, more: dict[int, dict] | None = None, body_required: bool = False) -> dict:
    """A v1 operation: `ok` on success (None: no answer body), the v1 error body on every
    client error; `more`: other answers by status (another success, a documented 5xx)."""
    responses = {str(status): answer("success", ok),
                 "4XX": answer("refused: the error says why", ref("Error")),
                 "503": answer("the database is unreachable (database_unavailable; Retry-After says when to "
                               "try again)", ref("Error"))}
    responses.update({str(code): response for code, response in (more or {}).items()})
    operation: dict[str, Any] = {"summary": summary, "responses": responses,
                                 "security": [{auth: []}] if auth else []}
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {"required": body_required, **json_content(body)}
    return operation


def legacy(summary: str, body: dict, data: dict) -> dict:
    """A seed route: always HTTP 200 with the envelope `{code, message, data}`."""
    return {
        "summary": summary,
        "security": [],
        "requestBody": {"required": True, **json_content(body)},
        "responses": {"200": answer("the envelope; `code` says success or error", envelope(data))},
    }


def legacy_get_or_post(summary: str, fields: dict[str, dict], required: tuple[str, ...], data: dict) -> dict:
    """A seed catalogue route: GET with its fields in the query, or POST with them in a JSON body."""
    get = {"summary": summary, "security": [],
           "responses": {"200": answer("the envelope; `code` says success or error", envelope(data))}}
    if fields:
        get["parameters"] = [query(name, schema, name in required) for name, schema in fields.items()]
    return {"get": get, "post": legacy(summary + " (fields in the JSON body)", request(fields, required), data)}


def envelope(data: dict) -> dict:
    """The seed's envelope around `data` (null on errors)."""
    return obj({"code": {"enum": ["success", "suc", "error"]}, "message": STRING, "data": nullable(data)})


def page(summary: str, params: list | None = None) -> dict:
    """An HTML page of the web front end (GET, and HEAD)."""
    responses = {"200": {"description": "the page", "content": {"text/html": {"schema": STRING}}},
                 "4XX": {"description": "no such page"}}
    get = {"summary": summary, "security": [], "responses": responses}
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
