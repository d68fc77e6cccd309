"""The OpenAPI description served at /api/openapi.json matches the app: every route the app
serves is described with the methods it answers, and every described operation is served."""
import re

import pytest
from tornado import web

from handlers.base import NotFoundHandler
from handlers.openapi import description

EXAMPLES = {"order_id": "0123456789abcdef01234567", "product_id": "0123456789abcdef01234567",
            "claim_id": "0123456789abcdef01234567:0", "view": "wait", "path": "js/api.js",
            "operator_id": "0123456789abcdef"}
METHODS = ("get", "head", "post", "put", "patch", "delete", "options")


def served_methods(handler: type) -> set[str]:
    """The methods a handler class implements itself (the others answer 405). Anything else
    under a method's name (a property named `options`, say) is a bug: Tornado would call it."""
    unimplemented = web.RequestHandler.get
    served = {m for m in METHODS if getattr(handler, m, unimplemented) is not unimplemented}
    for method in served:
        assert callable(getattr(handler, method)) and not isinstance(
            getattr(handler, method), property), f"{handler.__name__}.{method} is not a method"
    return served


def example_url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: EXAMPLES[m.group(1)], path)


def rule_for(app: web.Application, url: str):
    """The first of the app's routes whose pattern matches `url` (what Tornado would pick)."""
    return next(rule for rule in app.wildcard_router.rules if rule.matcher.regex.match(url))


def described_operations() -> dict[str, set[str]]:
    return {path: {m for m in item if m in METHODS} for path, item in description()["paths"].items()}


def test_every_described_operation_is_served_with_that_method(app):
    for path, methods in described_operations().items():
        rule = rule_for(app, example_url(path))
        assert rule.target is not NotFoundHandler, f"{path} is described but not served"
        assert methods == served_methods(rule.target), (path, methods, served_methods(rule.target))


def test_every_route_the_app_serves_is_described_with_all_its_methods(app):
    described: dict[object, set[str]] = {}
    for path, methods in described_operations().items():
        described.setdefault(rule_for(app, example_url(path)), set()).update(methods)
    for rule in app.wildcard_router.rules:
        if rule.target is NotFoundHandler:
            continue
        assert rule in described, f"route {rule.matcher.regex.pattern} ({rule.target.__name__}) is not described"
        assert described[rule] == served_methods(rule.target), rule.matcher.regex.pattern


def test_the_description_is_openapi_3_1_with_every_reference_defined():
    spec = description()
    assert spec["openapi"].startswith("3.1")
    text = repr(spec)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in spec["components"]["schemas"], name
    for item in spec["paths"].values():
        for operation in item.values():
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(spec["components"]["securitySchemes"])


@pytest.mark.gen_test
async def test_the_description_is_served_at_api_openapi_json(api):
    status, served = await api.request("GET", "/api/openapi.json")
    assert status == 200 and served == description()
