"""The one home of what a valid value looks like: ids (order, product, claim), phone numbers,
postal codes, loopback hosts. Used by the routes (handlers/base.py builds its URL patterns from
these), the request parsers and the domain; handlers/openapi describes the same patterns."""
import ipaddress
import re

from lottery.errors import InvalidInput

ID = r"[A-Za-z0-9_-]{1,64}"
ID_PATTERN = re.compile(f"^{ID}$")
# A claim is a gift's item: `{order_id}:{item_index}`.
CLAIM_ID = re.compile(rf"^{ID}:[0-9]{{1,4}}$")
PHONE = re.compile(r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}(-[0-9]{1,6})?)$")  # mainland mobile, or a landline
# ASCII digits only (`\d` would take full-width and Arabic-Indic ones), as the OpenAPI patterns say.
POSTAL_CODE = re.compile(r"^[0-9]{6}$")


def check_identifier(value: object, name: str = "order_id") -> str:
    """`value` if it is a well-formed id; InvalidInput otherwise (never a query from it)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidInput(f"参数 {name} 格式错误")
    return value


def is_loopback(name: str) -> bool:
    """Whether a host name or IP address (no port) is this machine's loopback: `localhost` (any
    case), 127.0.0.0/8 or ::1."""
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
