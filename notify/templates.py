"""Subscribe-message templates from configuration, and their rendering within WeChat's limits.

Configuration is JSON (a file named by `--notify_config` / NOTIFY_CONFIG, or the JSON itself in
NOTIFY_TEMPLATES):

    {"miniprogram_state": "formal", "lang": "zh_CN",
     "templates": {
       "gift_received": {"template_id": "...", "page": "pages/gift/result?order_id={order_id}",
                         "data": {"thing1": "{item}", "name2": "{sender}", "thing3": "{wish}"}},
       "gift_won": {...}, "gift_lost": {...}, "gift_summary": {...}}}

Each `data` value is a `str.format` pattern over the message's values (see `VALUES`). The field
type is the key without its digits (`thing1` -> `thing`); values are cut to that type's limit so
that a long wish never makes a send fail with 47003."""
import json
import re
from dataclasses import dataclass, field
from string import Formatter
from lottery.errors import ConfigError

# Message kinds, one template each.
KINDS = ("gift_received", "gift_won", "gift_lost", "gift_summary", "prize_shipped", "claim_reminder",
         "gift_refunded")

# The values a pattern may use, per message (all strings; a kind's message fills those it has).
VALUES = ("order_id", "item", "wish", "sender", "result", "participant_count", "winner_count",
          "opened_at", "method", "carrier", "tracking_no", "deadline", "amount")

# WeChat's limit per field type, in characters. `name` is ten Chinese characters or twenty
# letters; `phrase` is at most five Chinese characters and nothing else.
FIELD_LIMITS = {"thing": 20, "short_thing": 5, "phrase": 5, "name": 20, "number": 32, "letter": 32,
                "symbol": 5, "character_string": 32, "phone_number": 17, "car_number": 8,
                "amount": 32, "time": 32, "date": 32}
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
DEFAULT_PAGE = "pages/gift/result?order_id={order_id}"


@dataclass(frozen=True)
class Template:
    kind: str
    template_id: str
    page: str
    data: dict[str, str]


@dataclass(frozen=True)
class NotifyConfig:
    """Templates by kind; a kind without a template is never sent."""

    templates: dict[str, Template] = field(default_factory=dict)
    miniprogram_state: str = "formal"
    lang: str = "zh_CN"

    def template_ids(self) -> dict[str, str]:
        """kind -> template id, for deciding who subscribed to what."""
        return {kind: t.template_id for kind, t in self.templates.items()}

    def render(self, kind: str, values: dict[str, str]) -> tuple[Template, str, dict]:
        """The template, the page and the `data` object of one message, every value cut to its
        field type's limit."""
        template = self.templates[kind]
        safe = _SafeValues(values)
        page = template.page.format_map(safe)
        data = {key: {"value": fit(key, pattern.format_map(safe))}
                for key, pattern in template.data.items()}
        return template, page, data


class _SafeValues(dict):
    def __missing__(self, key: str) -> str:
        return ""


def field_type(key: str) -> str:
    """`thing12` -> `thing`."""
    return re.sub(r"\d+$", "", key)


def fit(key: str, value: str) -> str:
    """The value cut to what WeChat accepts for this field type (never empty)."""
    kind = field_type(key)
    value = " ".join(value.split())  # no newlines or runs of spaces
    if kind == "phrase":
        # Chinese characters only; anything else makes WeChat refuse the whole message.
        value = "".join(c for c in value if "\u4e00" <= c <= "\u9fff") or "通知"
        return value[:FIELD_LIMITS["phrase"]]
    limit = FIELD_LIMITS.get(kind, 20)
    if kind == "name" and not value.isascii():
        limit = 10
    if kind in ("number", "letter", "character_string", "phone_number", "car_number", "symbol",
                "amount", "time", "date"):
        return (value or "-")[:limit]
    if kind in ("thing", "short_thing") and len(value) > limit:
        return value[:limit - 1] + "…"
    return value[:limit] or "-"


def parse_config(text: str, source: str = "notification config") -> NotifyConfig:
    """A NotifyConfig from JSON text, or ConfigError saying what is wrong."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    state = raw.get("miniprogram_state", "formal")
    if state not in MINIPROGRAM_STATES:
        raise ConfigError(f"{source}: miniprogram_state must be one of {', '.join(MINIPROGRAM_STATES)}")
    lang = raw.get("lang", "zh_CN")
    if lang not in LANGS:
        raise ConfigError(f"{source}: lang must be one of {', '.join(LANGS)}")
    entries = raw.get("templates", {})
    if not isinstance(entries, dict):
        raise ConfigError(f"{source}: templates must be an object keyed by kind")
    templates = {}
    for kind, entry in entries.items():
        where = f"{source}: templates.{kind}"
        if kind not in KINDS:
            raise ConfigError(f"{where}: unknown kind (kinds: {', '.join(KINDS)})")
        if not isinstance(entry, dict) or not isinstance(entry.get("template_id"), str) \
                or not entry["template_id"]:
            raise ConfigError(f"{where}: template_id is required")
        page = entry.get("page", DEFAULT_PAGE)
        data = entry.get("data")
        if not isinstance(page, str) or not isinstance(data, dict) or not data:
            raise ConfigError(f"{where}: page must be a string and data a non-empty object")
        for key, pattern in data.items():
            if field_type(key) not in FIELD_LIMITS:
                raise ConfigError(f"{where}.data.{key}: unknown field type {field_type(key)!r}")
            if not isinstance(pattern, str):
                raise ConfigError(f"{where}.data.{key}: must be a string pattern")
        for pattern in [page, *data.values()]:
            for _, name, _, _ in Formatter().parse(pattern):
                if name is not None and name not in VALUES:
                    raise ConfigError(f"{where}: unknown value {{{name}}} (values: {', '.join(VALUES)})")
        templates[kind] = Template(kind, entry["template_id"], page, dict(data))
    return NotifyConfig(templates, state, lang)


def load_config(path: str = "", inline: str = "") -> NotifyConfig:
    """The configuration from a file, or from inline JSON, or empty (nothing is sent)."""
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return parse_config(handle.read(), path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    return parse_config(inline, "NOTIFY_TEMPLATES")
