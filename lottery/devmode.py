"""Development mode: a browser sign-in without WeChat, and demo gifts.

Only for `--dev` / `--demo`: anyone may sign in as anyone by typing a name, so the server
refuses it unless the database is local (the embedded engine or a MongoDB on loopback)."""
import logging
from dataclasses import replace
from datetime import timedelta

from lottery import clock
from lottery.accounts import Accounts
from lottery.catalogue import Catalogue, ProductSpec
from lottery.errors import InvalidInput
from lottery.validate import is_loopback
from lottery.gifts import GiftSpec, Gifts, Item

log = logging.getLogger(__name__)

MAX_NAME = 20
DEMO_SENDER = "小红"
# The host names a development server answers to by default (its Host check).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_local_database(uri: str) -> bool:
    """True for the embedded engine (no URI) or a URI whose every host is on loopback.
    `mongodb+srv://` names a DNS record, never loopback."""
    if not uri:
        return True
    if not uri.startswith("mongodb://"):
        return False
    authority = uri[len("mongodb://"):].split("/", 1)[0].split("?", 1)[0]
    hosts = authority.rsplit("@", 1)[-1].split(",")
    return all(_is_loopback(host) for host in hosts)


def _is_loopback(host: str) -> bool:
    """`host:port` or `[v6]:port` on loopback."""
    return is_loopback(host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0])


def dev_openid(name: str) -> str:
    """The stand-in openid of a development member: one member per display name."""
    return "dev_" + name


def clean_name(value: object) -> str:
    """A display name: 1 to 20 characters after trimming, no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("请输入昵称")
    name = " ".join(value.split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"昵称最多 {MAX_NAME} 个字")
    if any(ord(ch) < 32 for ch in name):
        raise InvalidInput("昵称包含非法字符")
    return name


async def sign_in(accounts: Accounts, name: object) -> tuple[str, str]:
    """Sign in (creating the member on first use) as `name`; returns (login_key, name)."""
    name = clean_name(name)
    member_id = await accounts.ensure_member(dev_openid(name), nickname=name)
    log.info("development sign-in of member %s", member_id)
    return await accounts.issue_key(member_id), name


# (label shown on the landing page, the gift)
_DEMOS = [
    ("直接送礼", GiftSpec(dev_openid(DEMO_SENDER), "direct",
                      [Item("红包封面"), Item("咖啡券"), Item("电影票")], wish="先到先得，祝你好运！")),
    ("满3人开奖", GiftSpec(dev_openid(DEMO_SENDER), "full", [Item("蓝牙耳机"), Item("保温杯")],
                       open_number=3, wish="凑满三个人就开奖")),
    ("定时开奖", GiftSpec(dev_openid(DEMO_SENDER), "timed", [Item("月饼礼盒")], wish="中秋快乐，阖家团圆")),
]


async def create_demo_gifts(gifts: Gifts, accounts: Accounts, timed_in: timedelta = timedelta(minutes=10)
                            ) -> list[dict]:
    """One fresh demo gift per opening method, sent by the member named DEMO_SENDER.
    Returns `[{order_id, method, label}]` for the landing page."""
    await accounts.ensure_member(dev_openid(DEMO_SENDER), nickname=DEMO_SENDER)
    demos = []
    for label, spec in _DEMOS:
        if spec.method == "timed":
            spec = replace(spec, open_at=clock.utcnow() + timed_in)
        gift = await gifts.create(spec)
        demos.append({"order_id": gift["_id"], "method": spec.method, "label": label})
    return demos


# (category, [(product, price in fen, stock, image under static/img/products/)])
_DEMO_CATALOGUE = [
    ("零食饮品", [("咖啡券", 2800, 200, "coffee.svg"), ("奶茶券", 1800, 300, "tea.svg"), ("坚果礼盒", 9900, 50, "nuts.svg")]),
    ("生活好物", [("保温杯", 12900, 30, "cup.svg"), ("蓝牙耳机", 19900, 20, "earphones.svg")]),
    ("节日礼盒", [("月饼礼盒", 16800, 40, "mooncake.svg"), ("红包封面", 600, 1000, "envelope.svg")]),
]


async def create_demo_catalogue(catalogue: Catalogue) -> int:
    """A small demo shop (with local images), unless the shop already has categories. Returns
    how many products it added."""
    if await catalogue.categories():
        return 0
    added = 0
    for sort, (category_name, products) in enumerate(_DEMO_CATALOGUE):
        category = await catalogue.add_category(category_name, sort)
        for name, price, stock, image in products:
            await catalogue.add_product(ProductSpec(name, price, stock, category["_id"],
                                                    [f"/static/img/products/{image}"], f"{name}，送给朋友的心意"))
            added += 1
    return added
