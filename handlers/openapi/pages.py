"""The web pages (handlers/pages.py) and the small API only they need: site info, development
sign-in and payment, the winners and the sender's participant list."""
from handlers.openapi.blocks import (COUNT, IDENTIFIER, ORDER_ID, PRODUCT_ID, STRING, TIME, array, obj, page,
                                     ref, request, static_file, trimmed, v1)
from lottery.gifts import METHODS

DEV_ONLY = " (only with --dev; 404 otherwise)"

PATHS = {
    "/": page("The landing page"),
    "/gift/{order_id}": page("A gift's join page", [ORDER_ID]),
    "/gift/{order_id}/{view}": page("A gift's waiting, result, proof or sender page", [
        ORDER_ID, {"name": "view", "in": "path", "required": True,
                   "schema": {"enum": ["wait", "result", "proof", "mine"]}}]),
    "/shop": page("The shop: categories and products"),
    "/shop/new": page("Create a gift: products, quantities and how it opens"),
    "/shop/product/{product_id}": page("A product", [PRODUCT_ID]),
    "/orders/{order_id}": page("An order's pay result, then its share link", [ORDER_ID]),
    "/orders/{order_id}/pay": page("An order's pay step", [ORDER_ID]),
    "/me/prizes": page("My prizes and their claims"),
    "/static/{path}": static_file(),
    "/api/site": {"get": v1("What the pages need to know: development mode and its demo gifts", obj({
        "dev": {"type": "boolean"}, "demo_sender": STRING,
        "demo_gifts": array(obj({"order_id": IDENTIFIER, "method": {"enum": list(METHODS)}, "label": STRING}))}),
        auth=None)},
    "/api/dev/login": {"post": v1(
        "Development sign-in by name" + DEV_ONLY, obj({"login_key": STRING, "name": STRING}),
        auth=None, body=request({"name": trimmed(20)}, ("name",)))},
    "/api/dev/pay/{order_id}": {"post": v1(
        "Development payment: the buyer's unpaid order is paid at the local WeChat Pay fake, which sends its "
        "signed notify (only with --dev running that fake; 404 otherwise)", obj({"order_id": IDENTIFIER}),
        params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/winners": {"get": v1("Who won what, names masked (public)", obj({
        "order_id": IDENTIFIER, "method": {"enum": list(METHODS)}, "status": STRING, "participant_count": COUNT,
        "winners": array(obj({"name": STRING, "avatar": STRING, "item": ref("Item")}))},
        optional=("participant_count",)), auth=None, params=[ORDER_ID])},
    "/api/v1/gifts/{order_id}/participants": {"get": v1("Who joined, for the gift's sender", obj({
        "order_id": IDENTIFIER, "joined_count": COUNT,
        "participants": array(obj({"name": STRING, "avatar": STRING, "joined_at": TIME,
                                   "outcome": {"enum": ["won", "lost", None]}}))}), params=[ORDER_ID])},
}
