"""What reaches the logs from HTTP: the access line (route, status, duration; never a query
string, a header or an address: `/ws?login_key=...` must never reach a log), and Tornado's own
connection-level lines, redacted."""
import logging
import re
from typing import Any

from tornado import web

from lottery import metrics


def loggable_path(request: Any) -> str:
    """The request's path for a log line: never the query string (login keys travel there on
    some routes), at most 200 characters."""
    path = request.path
    return path if len(path) <= 200 else path[:200] + "..."


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def log_request(handler: web.RequestHandler) -> None:
    """Access log without the query string or the address: `/ws?login_key=...` must never
    reach a log."""
    status = handler.get_status()
    seconds = handler.request.request_time()
    # Bounded labels only: the route's name is its handler class (not the path), and a method
    # a client made up is "other".
    method = handler.request.method if handler.request.method in HTTP_METHODS else "other"
    metrics.REQUEST_SECONDS.labels(type(handler).__name__, method, str(status)).observe(seconds)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms", status, handler.request.method, loggable_path(handler.request), 1000.0 * seconds,
        extra={"route": type(handler).__name__, "method": method, "status": status,
               "duration_ms": round(1000.0 * seconds, 1)})


class TornadoLogRedaction(logging.Filter):
    """Tornado's own connection-level lines ("Malformed HTTP message from 1.2.3.4: Invalid
    header value 'Bearer ...'", "...: Only integer Content-Length is allowed: <what was sent>",
    "Timeout reading body from 1.2.3.4") name the peer's address and quote what it sent (a
    header, a query string). Rewritten without them: addresses become [peer], a query string
    `?...`, and the message is cut at its first quote or after its second ": " (where Tornado's
    messages put the value they quote)."""

    ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|\[?(?:[0-9A-Fa-f]{1,4})?(?::[0-9A-Fa-f]{0,4}){2,7}\]?")
    QUERY = re.compile(r"\?\S*")

    def filter(self, record: logging.LogRecord) -> bool:
        text = self.QUERY.sub("?...", self.ADDRESS.sub("[peer]", record.getMessage()))
        first = text.find(": ")
        second = text.find(": ", first + 2) if first >= 0 else -1
        cuts = [i for i in (text.find("'"), text.find('"'), second + 2 if second >= 0 else -1) if i >= 0]
        if cuts:
            text = text[:min(cuts)] + "..."
        record.msg, record.args = text, None
        return True


def redact_tornado_logs() -> None:
    """Install the redaction on Tornado's loggers (once, however often called)."""
    for name in ("tornado.general", "tornado.application"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, TornadoLogRedaction) for f in logger.filters):
            logger.addFilter(TornadoLogRedaction())
