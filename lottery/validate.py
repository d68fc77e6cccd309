"""Input checks shared by every entry point. Values reach MongoDB only after passing here,
so an operator object such as {"$ne": null} can never become part of a query."""
import re
from typing import Any

from lottery.errors import InvalidInput, MissingParams

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _present(body: dict, name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise MissingParams()
    return value


def text(body: dict, name: str, max_len: int, required: bool = True, default: str = "") -> str:
    """A string field: missing -> 缺少参数 (when required); not a string or too long -> 参数错误."""
    if not required and body.get(name) in (None, ""):
        return default
    value = _present(body, name)
    if not isinstance(value, str):
        raise InvalidInput(f"参数 {name} 必须是字符串")
    if len(value) > max_len:
        raise InvalidInput(f"参数 {name} 过长")
    return value


def identifier(body: dict, name: str) -> str:
    """An id such as order_id: a short string of letters, digits, '_' and '-'."""
    value = text(body, name, 64)
    if not ID_PATTERN.match(value):
        raise InvalidInput(f"参数 {name} 格式错误")
    return value


def check_identifier(value: str, name: str = "order_id") -> str:
    """The same rule for an id taken from a URL path."""
    if not ID_PATTERN.match(value or ""):
        raise InvalidInput(f"参数 {name} 格式错误")
    return value


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
    """An optional list of short strings (for example accepted template ids)."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidInput(f"参数 {name} 格式错误")
    if not all(isinstance(v, str) and 0 < len(v) <= max_len for v in value):
        raise InvalidInput(f"参数 {name} 格式错误")
    return list(dict.fromkeys(value))
