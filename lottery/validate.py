"""What an id looks like: order ids (and later product ids) are short strings of letters,
digits, '_' and '-'. One definition, used by the routes (handlers/base.py builds its URL
patterns from it), the request parsers and the domain."""
import re

from lottery.errors import InvalidInput

ID = r"[A-Za-z0-9_-]{1,64}"
ID_PATTERN = re.compile(f"^{ID}$")


def check_identifier(value: object, name: str = "order_id") -> str:
    """`value` if it is a well-formed id; InvalidInput otherwise (never a query from it)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidInput(f"参数 {name} 格式错误")
    return value
