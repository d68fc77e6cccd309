"""Reading request fields: present, of the right type, within bounds. Values reach the domain
(and MongoDB) only after passing here, so an operator object such as {"$ne": null} can never
become part of a query. Missing -> 缺少参数 (MissingParams); wrong -> 参数错误 (InvalidInput)."""
import json
import re
from typing import Any

from lottery import clock
from lottery.entry import EntryProof
from lottery.errors import InvalidInput, MissingParams
from lottery.gifts import DEFAULT_WISH, MAX_TIER, MAX_TIER_NAME
from lottery.validate import check_identifier

# How deep JSON may nest (arrays and objects within each other). Our bodies and frames nest two
# or three levels; Python's parser would recurse until RecursionError on a deep one.
MAX_JSON_DEPTH = 32


def json_document(raw: str | bytes, what: str) -> Any:
    """A request body or websocket frame (`what` names it in the message) parsed as JSON,
    nesting at most MAX_JSON_DEPTH levels; InvalidInput otherwise."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:  # the parser gave up: far deeper than we allow
        raise InvalidInput(f"{what}嵌套过深（最多 {MAX_JSON_DEPTH} 层）") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{what}不是合法的 JSON") from exc
    if nesting_exceeds(value, MAX_JSON_DEPTH):
        raise InvalidInput(f"{what}嵌套过深（最多 {MAX_JSON_DEPTH} 层）")
    return value


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` in `value` (level by level, without
    recursion)."""
    level, depth = [value], 0
    while level:
        containers = [v for v in level if isinstance(v, (list, dict))]
        if not containers:
            return False
        depth += 1
        if depth > limit:
            return True
        level = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return False


def _present(body: dict, name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise MissingParams()
    return value


def text(body: dict, name: str, max_len: int, required: bool = True, default: str = "") -> str:
    """A string field."""
    if not required and body.get(name) in (None, ""):
        return default
    value = _present(body, name)
    if not isinstance(value, str):
        raise InvalidInput(f"参数 {name} 必须是字符串")
    if len(value) > max_len:
        raise InvalidInput(f"参数 {name} 过长")
    return value


def identifier(body: dict, name: str) -> str:
    """An id such as order_id."""
    return check_identifier(text(body, name, 64), name)


def integer(body: dict, name: str, low: int, high: int, required: bool = True) -> int | None:
    """A whole number within [low, high]; booleans are not numbers here."""
    if not required and body.get(name) is None:
        return None
    value = _present(body, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"参数 {name} 必须是整数")
    if not low <= value <= high:
        raise InvalidInput(f"参数 {name} 必须在 {low} 到 {high} 之间")
    return value


def text_list(body: dict, name: str, max_items: int, max_len: int) -> list[str]:
    """An optional list of short strings (for example accepted template ids), duplicates dropped."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidInput(f"参数 {name} 格式错误")
    if not all(isinstance(v, str) and 0 < len(v) <= max_len for v in value):
        raise InvalidInput(f"参数 {name} 格式错误")
    return list(dict.fromkeys(value))


def objects(body: dict, name: str, max_items: int) -> list[dict]:
    """A non-empty list of JSON objects."""
    value = body.get(name)
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{name} 必须是非空列表")
    if len(value) > max_items:
        raise InvalidInput(f"{name} 最多 {max_items} 个")
    if not all(isinstance(entry, dict) for entry in value):
        raise InvalidInput(f"{name} 的每一项必须是对象")
    return value


def query_integer(value: str, name: str, low: int, high: int) -> int:
    """A whole number (ASCII digits) from a query string."""
    if not re.fullmatch(r"-?[0-9]{1,12}", value.strip()):
        raise InvalidInput(f"参数 {name} 必须是整数")
    return integer({name: int(value)}, name, low, high)


def optional_time(body: dict, name: str) -> Any:
    """An optional ISO 8601 time (a naive one is Asia/Shanghai), as aware UTC, or None."""
    value = text(body, name, 40, required=False)
    if not value:
        return None
    try:
        return clock.parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"{name} 必须是 ISO 8601 时间") from exc


def flag(body: dict, name: str) -> bool | None:
    """An optional true/false."""
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidInput(f"参数 {name} 必须是 true 或 false")
    return value


def opening(body: dict) -> dict:
    """How a gift opens and what it says, as a new gift or an order gives them: method,
    open_number, open_at, wish, deadline_hours, sender_subscribed (types here; the rules are
    the domain's)."""
    return {"method": text(body, "method", 16),
            "open_number": integer(body, "open_number", 0, 2**31, required=False),
            "open_at": optional_time(body, "open_at"),
            "wish": text(body, "wish", 100, required=False, default=DEFAULT_WISH),
            "deadline_hours": integer(body, "deadline_hours", 0, 2**31, required=False),
            "sender_subscribed": text_list(body, "sender_subscribed", 10, 128),
            "pass_phrase": text(body, "pass_phrase", 64, required=False) or None,
            "group_only": bool(flag(body, "group_only"))}


def entry_proof(body: dict) -> EntryProof:
    """What a join brings for its gift's entry conditions: `pass_phrase`, and
    wx.getGroupEnterInfo's `iv` and `encryptedData`."""
    return EntryProof(pass_phrase=text(body, "pass_phrase", 64, required=False),
                      group_iv=text(body, "iv", 64, required=False),
                      group_data=text(body, "encryptedData", 8192, required=False))


def tier(entry: dict) -> dict:
    """An item's or order line's optional prize tier: `tier` (rank) and `tier_name` (types here;
    the rules are the domain's)."""
    return {"tier": integer(entry, "tier", 1, MAX_TIER, required=False) or 0,
            "tier_name": text(entry, "tier_name", MAX_TIER_NAME, required=False)}
