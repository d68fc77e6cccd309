"""Every admin action, from the console or the bearer-token API, in one place: each calls the
domain service that owns the rule (the catalogue, claims, refunds, the draw, orders, accounts),
then writes one audit entry (who, what, before and after, the request id). An action refused
by its rule writes nothing; one that took effect writes exactly one entry, so two operators
racing on the same claim leave one `claim.ship` entry: the winner's."""
import csv
import io
from dataclasses import dataclass

from lottery.audit import Actor, AuditLog
from lottery.catalogue import Catalogue, ProductChange, ProductSpec, category_view, product_view
from lottery.claims import Claims, check_claim_id
from lottery.draw import Draws
from lottery.errors import InvalidInput, WrongClaimState
from lottery.gifts import GiftSpec, Gifts
from lottery.media import MediaFolder
from lottery.operators import Operator, Operators
from lottery.orders import Orders
from lottery.reconciliation import Reconciliation
from lottery.refunds import Refunds
from lottery.storage import claims as claim_store
from lottery.storage.backup import Backups

MAX_SHIPPING_ROWS = 500
SHIPPING_COLUMNS = ("claim_id", "carrier", "tracking_no")
CARRIER_MAX, TRACKING_MAX = 32, 64


@dataclass(frozen=True)
class ShippingRow:
    line: int
    claim_id: str
    carrier: str
    tracking_no: str


def shipping_text(value: str, name: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit or any(ord(c) < 32 for c in text):
        raise InvalidInput(f"{name} 须为 1 到 {limit} 个字")
    return text


def parse_shipping_csv(data: bytes) -> tuple[list[ShippingRow], list[str]]:
    """The rows of a tracking-number CSV (`claim_id,carrier,tracking_no`, a header line first),
    and what is wrong with it, row by row (line numbers as a spreadsheet shows them)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], ["文件不是 UTF-8 编码的 CSV"]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(SHIPPING_COLUMNS):
        return [], [f"第 1 行须为表头 {','.join(SHIPPING_COLUMNS)}"]
    rows, errors, seen = [], [], set()
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(rows) + len(errors) >= MAX_SHIPPING_ROWS:
            errors.append(f"最多 {MAX_SHIPPING_ROWS} 行")
            break
        if len(cells) != 3:
            errors.append(f"第 {line} 行：须为 3 列")
            continue
        try:
            claim_id = check_claim_id(cells[0].strip().lstrip("'"))
            row = ShippingRow(line, claim_id, shipping_text(cells[1], "快递公司", CARRIER_MAX),
                              shipping_text(cells[2], "运单号", TRACKING_MAX))
        except InvalidInput as exc:
            errors.append(f"第 {line} 行：{exc.message}")
            continue
        if claim_id in seen:
            errors.append(f"第 {line} 行：{claim_id} 重复")
            continue
        seen.add(claim_id)
        rows.append(row)
    if not rows and not errors:
        errors.append("文件中没有数据行")
    return rows, errors


def claim_state(claim: dict) -> dict:
    """What the audit log keeps of a claim: its status and shipping, never its address."""
    return {"status": claim["status"], "carrier": claim.get("carrier"), "tracking_no": claim.get("tracking_no")}


class AdminActions:
    """The admin actions, each audited once."""

    def __init__(self, audit: AuditLog, catalogue: Catalogue, gifts: Gifts, draws: Draws, orders: Orders,
                 claims: Claims, refunds: Refunds, reconciliation: Reconciliation, backups: Backups,
                 operators: Operators, media: MediaFolder) -> None:
        self.audit = audit
        self.catalogue = catalogue
        self.gifts = gifts
        self.draws = draws
        self.orders = orders
        self.claims = claims
        self.refunds = refunds
        self.reconciliation = reconciliation
        self.backups = backups
        self.operators = operators
        self.media = media

    # Gifts and the draw

    async def create_gift(self, actor: Actor, spec: GiftSpec) -> dict:
        gift = await self.gifts.create(spec)
        await self.audit.record(actor, "gift.create", f"gift:{gift['_id']}", after={
            "method": gift["method"], "items": len(gift["items"]), "sender_id": gift["sender_id"]})
        return gift

    async def reopen_draw(self, actor: Actor, order_id: str) -> bool:
        """Draw a gift that is due (or whose draw stalled) now; True if this call finished it.
        Idempotent: a gift already drawn, or not due, is left as it is."""
        before = (await self.gifts.get(order_id))["status"]
        finished = bool(await self.draws.open([order_id]))
        after = (await self.gifts.get(order_id))["status"]
        await self.audit.record(actor, "gift.draw", f"gift:{order_id}", {"status": before},
                                {"status": after, "drawn_now": finished})
        return finished

    # The catalogue

    async def add_category(self, actor: Actor, name: str, sort: int) -> dict:
        category = await self.catalogue.add_category(name, sort)
        await self.audit.record(actor, "category.create", f"category:{category['_id']}",
                                after=category_view(category))
        return category

    async def add_product(self, actor: Actor, spec: ProductSpec) -> dict:
        product = await self.catalogue.add_product(spec)
        await self.audit.record(actor, "product.create", f"product:{product['_id']}", after=product_view(product))
        return product

    async def change_product(self, actor: Actor, product_id: str, change: ProductChange) -> dict:
        before = product_view(await self.catalogue.any_product(product_id))
        product = await self.catalogue.change_product(product_id, change)
        after = product_view(product)
        await self.audit.record(actor, "product.change", f"product:{product_id}",
                                {k: v for k, v in before.items() if after[k] != v},
                                {k: v for k, v in after.items() if before[k] != v})
        return product

    async def upload_image(self, actor: Actor, product_id: str, data: bytes) -> dict:
        """Save an uploaded image in the media folder and add it to the product's images."""
        product = await self.catalogue.any_product(product_id)
        path = self.media.save_image(data)
        return await self.change_product(actor, product_id, ProductChange(images=[*product.get("images", []), path]))

    # Shipping

    async def ship(self, actor: Actor, claim_id: str, carrier: str, tracking_no: str) -> dict:
        claim = await self.claims.ship(claim_id, carrier, tracking_no)
        await self.audit.record(actor, "claim.ship", f"claim:{claim_id}", {"status": "claimed"},
                                {"status": "shipped", "carrier": carrier, "tracking_no": tracking_no})
        return claim

    async def delivered(self, actor: Actor, claim_id: str) -> dict:
        claim = await self.claims.delivered(claim_id)
        await self.audit.record(actor, "claim.delivered", f"claim:{claim_id}", {"status": "shipped"},
                                {"status": "delivered"})
        return claim

    async def ship_from_csv(self, actor: Actor, data: bytes) -> dict:
        """Mark shipped every claim a tracking-number CSV names: every row is checked first (its
        format, its claim exists and waits to ship), and nothing is applied when any row is bad.
        Then each row ships through the same conditional update as one by one; a row another
        operator shipped meanwhile is reported, not applied twice.
        -> `{applied: [...], skipped: [...], errors: [...]}`."""
        rows, errors = parse_shipping_csv(data)
        for row in rows:
            claim = await claim_store.get(self.claims.db, row.claim_id)
            if claim is None:
                errors.append(f"第 {row.line} 行：领奖记录 {row.claim_id} 不存在")
            elif claim["status"] != "claimed":
                errors.append(f"第 {row.line} 行：{row.claim_id} 不是待发货状态")
        if errors:
            return {"applied": [], "skipped": [], "errors": errors}
        applied, skipped = [], []
        for row in rows:
            try:
                await self.ship(actor, row.claim_id, row.carrier, row.tracking_no)
            except WrongClaimState:
                skipped.append(f"第 {row.line} 行：{row.claim_id} 已被他人处理")
            else:
                applied.append(row.claim_id)
        return {"applied": applied, "skipped": skipped, "errors": []}

    # Money

    async def refund_by_hand(self, actor: Actor, claim_id: str, reason: str) -> None:
        before = await self.refunds.by_hand(claim_id, reason)
        await self.audit.record(actor, "claim.refund", f"claim:{claim_id}", claim_state(before), {
            "status": "refunded", "amount": before["item"].get("price"), "reason": " ".join(reason.split()),
            "order_id": before["order_id"]})

    async def recheck_payment(self, actor: Actor, order_id: str) -> dict:
        answer = await self.orders.recheck(order_id)
        await self.audit.record(actor, "order.query_payment", f"order:{order_id}", after=answer)
        return answer

    async def rerun_reconciliation(self, actor: Actor, day: object) -> dict:
        report = await self.reconciliation.rerun(day)
        await self.audit.record(actor, "reconciliation.rerun", f"reconciliation:{report['date']}",
                                after={"status": report["status"], "mismatches": len(report["mismatches"])})
        return report

    async def backup(self, actor: Actor) -> dict:
        taken = await self.backups.take()
        await self.audit.record(actor, "backup.take", "backup", after={"size_bytes": taken["size_bytes"]})
        return taken

    # Accounts (owners)

    async def invite(self, actor: Actor, name: str, role: str) -> tuple[dict, str]:
        """A new account and its first password (shown once; never in the audit log)."""
        operator, password = await self.operators.invite(name, role)
        await self.audit.record(actor, "account.invite", f"account:{operator['name']}",
                                after={"role": operator["role"]})
        return operator, password

    async def change_role(self, actor: Actor, by: Operator, operator_id: str, role: str) -> None:
        before, after = await self.operators.change_role(operator_id, role, by)
        await self.audit.record(actor, "account.role", f"account:{after['name']}", {"role": before["role"]},
                                {"role": after["role"]})

    async def set_disabled(self, actor: Actor, by: Operator, operator_id: str, disabled: bool) -> None:
        before, after = await self.operators.set_disabled(operator_id, disabled, by)
        await self.audit.record(actor, "account.disable" if disabled else "account.enable", f"account:{after['name']}",
                                {"disabled": before["disabled"]}, {"disabled": after["disabled"]})

    async def change_password(self, actor: Actor, me: Operator, current: str, new: str) -> str:
        token = await self.operators.change_password(me, current, new)
        await self.audit.record(actor, "account.password", f"account:{me.name}")
        return token

    async def enable_totp(self, actor: Actor, me: Operator, secret: str, code: str) -> None:
        await self.operators.enable_totp(me, secret, code)
        await self.audit.record(actor, "account.totp", f"account:{me.name}", {"totp": me.totp}, {"totp": True})
