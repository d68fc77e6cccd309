"""Claiming a prize (the winner), the sender's view of a gift's claims, my prizes, and the
operator's shipping list. Addresses go only to their winner and to the operator."""
import csv
import io

from handlers import params
from handlers.base import ID_GROUP, BaseHandler
from handlers.admin import AdminHandler
from lottery.claims import clean_address
from lottery.errors import InvalidInput
from lottery.orders import refund_summary

CLAIM_GROUP = r"([A-Za-z0-9_-]{1,64}:[0-9]{1,4})"
CSV_FIELDS = ("claim_id", "order_id", "item", "userName", "telNumber", "provinceName", "cityName",
              "countyName", "detailInfo", "postalCode", "claimed_at")
# A cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> str:
    """A CSV cell the operator's spreadsheet shows as text: a value that would start a formula
    (a winner may name themselves `=HYPERLINK(...)`) gets a leading `'`. The csv module still
    quotes commas, quotes and line breaks."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def shipping_csv(claims: list[dict]) -> str:
    """The shipping list as CSV, addresses in full, every cell safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for claim in claims:
        row = {**claim, **(claim.get("address") or {}), "item": claim["item"]["name"]}
        writer.writerow({field: spreadsheet_cell(row.get(field)) for field in CSV_FIELDS})
    return out.getvalue()


class ClaimHandler(BaseHandler):
    loads_gift = True

    async def get(self, order_id: str) -> None:
        """The winner's claim of this gift, with their address once given (as the claim will be
        opened, if the background has not opened it yet): status, deadline, shipping."""
        member_id, gift, _ = self.my_gift()
        self.reply(await self.claims.of_member(gift, self.join, member_id))

    async def post(self, order_id: str) -> None:
        """The winner's address, in the fields of `wx.chooseAddress` (`userName, telNumber,
        provinceName, cityName, countyName, detailInfo, postalCode?`), and `subscribed?` (the
        template ids accepted for the shipping message) -> the claim, with the address. Again
        until the item ships changes the address."""
        member_id, gift, _ = self.my_gift()
        body = self.json_body()
        address = clean_address(body)
        subscribed = params.text_list(body, "subscribed", 10, 128)
        self.reply(await self.claims.give_address(gift, self.join, member_id, address, subscribed))


class GiftClaimsHandler(BaseHandler):
    loads_gift = True

    async def get(self, order_id: str) -> None:
        """The sender's view: `{claims: [...]}`, each won item's winner (masked) and claim status;
        the order's refunds, and `order`: where its refunds stand (null for a gift not bought)."""
        member_id, gift, _ = self.my_gift()
        claims = await self.claims.of_gift(gift, member_id)
        refunds = await self.refunds.of_order(order_id) if "order" in gift else []
        self.reply({"order_id": order_id, "claims": claims,
                    "refunds": [{k: r[k] for k in ("refund_no", "amount", "items", "status", "reason")} for r in refunds],
                    "order": refund_summary(gift["order"]) if "order" in gift else None})


class MyPrizesHandler(BaseHandler):
    async def get(self) -> None:
        """`{prizes: [...]}`: what I won and where each stands (with my own addresses)."""
        self.reply({"prizes": await self.claims.of_winner(self.member_id())})


class AdminClaimsHandler(AdminHandler):
    async def get(self) -> None:
        """`?status=claimed&cursor=&format=json|csv`: the shipping list (addresses in full)."""
        status = params.text({"status": self.query_value("status", "claimed")}, "status", 16)
        cursor = params.text({"cursor": self.query_value("cursor", "")}, "cursor", 80, required=False)
        answer_format = self.query_value("format", "json")
        if answer_format not in ("json", "csv"):
            raise InvalidInput("format 必须是 json 或 csv")
        found = await self.claims.page(status, cursor)
        if answer_format == "json":
            self.reply(found)
            return
        self.set_header("Content-Type", "text/csv; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="claims-{status}.csv"')
        if found["next_cursor"]:
            self.set_header("X-Next-Cursor", found["next_cursor"])
        self.finish(shipping_csv(found["claims"]))


class AdminShipHandler(AdminHandler):
    async def post(self, claim_id: str) -> None:
        """`{carrier, tracking_no}`: claimed -> shipped; the winner is told."""
        body = self.json_body()
        self.reply(await self.admin_actions.ship(self.actor, claim_id, params.text(body, "carrier", 32),
                                                 params.text(body, "tracking_no", 64)))


class AdminDeliveredHandler(AdminHandler):
    async def post(self, claim_id: str) -> None:
        """shipped -> delivered."""
        self.reply(await self.admin_actions.delivered(self.actor, claim_id))


class AdminRefundsHandler(AdminHandler):
    async def get(self) -> None:
        """`?status=failed&cursor=`: refunds in a state (failed and abnormal ones need the operator)."""
        status = params.text({"status": self.query_value("status", "failed")}, "status", 16)
        cursor = params.text({"cursor": self.query_value("cursor", "")}, "cursor", 80, required=False)
        self.reply(await self.refunds.page(status, cursor))


default_handlers = [
    (rf"/api/v1/gifts/{ID_GROUP}/claim", ClaimHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/claims", GiftClaimsHandler),
    (r"/api/v1/me/prizes", MyPrizesHandler),
    (r"/api/admin/claims", AdminClaimsHandler),
    (rf"/api/admin/claims/{CLAIM_GROUP}/ship", AdminShipHandler),
    (rf"/api/admin/claims/{CLAIM_GROUP}/delivered", AdminDeliveredHandler),
    (r"/api/admin/refunds", AdminRefundsHandler),
]
