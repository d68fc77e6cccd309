"""The Tornado application every process serves: a Host check before any route, the count of
requests in flight (for a graceful shutdown), and the Content-Security-Policy of every answer."""
import asyncio
import weakref
from typing import Any

from tornado import web

from handlers.base import UnknownHostHandler


class InFlight:
    """The HTTP requests being answered now, so that a shutdown can let them finish, and the
    connections that have brought a request (the others are accepted ones whose first request
    is still on its way: a shutdown waits for it rather than cut it)."""

    def __init__(self) -> None:
        self.count = 0
        self.streams_with_requests: weakref.WeakSet = weakref.WeakSet()
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.count += 1
        self._idle.clear()

    def ended(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self, timeout: float) -> bool:
        """Wait until no request is being answered; False if `timeout` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


def host_name(host: str) -> str:
    """The name in a Host header: `Gift.Example.com:8080` -> `gift.example.com`, `[::1]:80` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class Application(web.Application):
    """Tornado's Application with a Host check before any route: with `allowed_hosts` in the
    settings (names, any port; "*" or unset: any), a request naming another host answers 400.
    A development server answers only to loopback names, so a web page whose own name was made
    to resolve to 127.0.0.1 (DNS rebinding) cannot use its sign-in by name."""

    def __init__(self, *args: Any, **settings: Any) -> None:
        settings.setdefault("in_flight", InFlight())
        super().__init__(*args, **settings)

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        stream = getattr(request.connection, "stream", None)
        if stream is not None:
            self.settings["in_flight"].streams_with_requests.add(stream)
        allowed = self.settings.get("allowed_hosts") or ["*"]
        if "*" not in allowed and host_name(request.host) not in allowed:
            return self.get_handler_delegate(request, UnknownHostHandler)
        return super().find_handler(request, **kwargs)
