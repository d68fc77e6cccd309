"""The API's contract: an OpenAPI 3.1 description of every route, served at /api/openapi.json.

tests/handlers/test_openapi.py checks it against the app's routes (every route described, every
described route served, with the same methods) and Schemathesis fuzzes the running server with
it (tests/contract/), so it cannot drift from what the server does. A new route is described in
the same change, in the module of its area (they mirror handlers/); blocks.py has the pieces."""
import copy

from handlers.base import BaseHandler
from handlers.openapi import admin, claims, console, gifts, orders, pages, payment, shop
from handlers.openapi.blocks import STRING, answer, array, obj, query

ERROR = obj({"error": obj({"code": STRING, "message": STRING})})

DATABASE_STATE = {"enum": ["ok", "unreachable"]}
READINESS = obj({"status": {"enum": ["ready", "not ready"]}, "database": DATABASE_STATE, "live": STRING,
                 "scheduler": STRING, "reasons": array(STRING)}, optional=("live", "scheduler", "reasons"))

HEALTH_PATHS = {
    "/healthz": {"get": {
        "summary": "Liveness: 200 while the process answers, saying whether its database is reachable as the "
                   "driver's monitoring last saw it (no database round trip)",
        "security": [],
        "responses": {"200": answer("alive", obj({"status": {"const": "ok"}, "database": DATABASE_STATE}))}}},
    "/readyz": {"get": {
        "summary": "Readiness: 200 when this process should get traffic; 503 with the reasons when not "
                   "(database unreachable, live feed not following, scheduler rounds stalled, shutting down)",
        "security": [],
        "responses": {"200": answer("ready", READINESS), "503": answer("not ready", READINESS)}}},
}

REALTIME_PATHS = {
    "/ws": {"get": {
        "summary": "The realtime channel: a websocket of JSON text frames (docs/realtime.md); "
                   "`?login_key=` or an `auth` frame",
        "security": [],
        "parameters": [query("login_key", STRING)],
        "responses": {"101": {"description": "upgraded to a websocket"},
                      "4XX": {"description": "not a websocket handshake, or a browser origin not allowed"}}}},
}

CONTRACT_PATHS = {
    "/api/openapi.json": {"get": {
        "summary": "This description", "security": [],
        "responses": {"200": answer("OpenAPI 3.1", {"type": "object"})}}},
}

AREAS = (gifts, shop, orders, payment, claims, admin, pages, console)


def description() -> dict:
    """The whole OpenAPI 3.1 document."""
    paths = {path: item for area in AREAS for path, item in area.PATHS.items()}
    schemas = {"Error": ERROR}
    for area in AREAS:
        schemas.update(getattr(area, "SCHEMAS", {}))
    paths.update({**HEALTH_PATHS, **REALTIME_PATHS, **CONTRACT_PATHS})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Gift lottery", "version": "1",
                 "description": "Every route the server answers: the seed mini-program's (always HTTP 200 with "
                                "`{code, message, data}`), the v1 API (real status codes, `{error: {code, "
                                "message}}`), the shop, orders and claims, WeChat Pay's notifies, admin, the "
                                "pages and their own API, health and the realtime channel. README.md explains "
                                "each."},
        "paths": copy.deepcopy(paths),
        "components": {
            "schemas": copy.deepcopy(schemas),
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
