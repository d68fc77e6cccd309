"""Log lines that say which request they belong to, as text or as one JSON object per line.

The request id (from `X-Request-Id`, or made here) and the member live in context variables:
asyncio hands them to every task a request starts, so the draw a join sets off logs with that
join's id; work that outlives the process it started in (a notification sent by a scheduler)
carries the id in its record and sets it again (`bound`). The stdlib's logging with a small
formatter is enough: structlog would mean rewriting every log call for the same output."""
import contextlib
import contextvars
import json
import logging
import re
import secrets
from datetime import datetime, timezone
from typing import Iterator

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
MEMBER_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("member_id", default=None)
# What a client may name its request: short and plain (it is written into every line).
CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Fields a record may carry (`extra=`) that the JSON line shows.
EXTRA_FIELDS = ("route", "method", "status", "duration_ms", "order_id")


def new_request_id() -> str:
    return secrets.token_hex(8)


def request_id_from(header: str | None) -> str:
    """The client's id when it is a plain short token, else a new one."""
    return header if header and CLIENT_ID.fullmatch(header) else new_request_id()


@contextlib.contextmanager
def bound(request_id: str | None, member_id: str | None = None) -> Iterator[None]:
    """Log as part of this request (background work resumed from a record)."""
    tokens = REQUEST_ID.set(request_id), MEMBER_ID.set(member_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(tokens[0])
        MEMBER_ID.reset(tokens[1])


class ContextFilter(logging.Filter):
    """Puts the request id and member on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.member_id = MEMBER_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, member_id, and the
    request's route, method, status and duration on access lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                "request_id": getattr(record, "request_id", None), "member_id": getattr(record, "member_id", None)}
        line.update({name: getattr(record, name) for name in EXTRA_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Log at INFO to standard error in `log_format` ("text" or "json"), each line with its
    request id."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(TextFormatter())


class TextFormatter(logging.Formatter):
    """Tornado's layout, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("[%(levelname)1.1s %(asctime)s %(name)s] %(message)s", "%y%m%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [{request_id}]" if request_id else text
