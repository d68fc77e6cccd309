"""Liveness and readiness, for load balancers and orchestrators."""
from handlers.base import BaseHandler


class HealthHandler(BaseHandler):
    """Liveness: 200 while the process answers (restarting it would not bring a lost database
    back), saying whether its database is reachable as far as the driver already knows. Never
    a database round trip: a hung database must not make a healthy process look dead."""

    async def prepare(self) -> None:
        self.current_user = None  # no login here

    async def get(self) -> None:
        database = "ok" if self.health.database_available else "unreachable"
        self.reply({"status": "ok", "database": database})


class ReadyHandler(HealthHandler):
    """Readiness: 200 when this process should get traffic and work; 503 with the reasons when
    not (database, live feed, scheduler rounds, shutting down)."""

    async def get(self) -> None:
        ready, parts = await self.health.readiness()
        self.reply({"status": "ready" if ready else "not ready", **parts}, status=200 if ready else 503)


default_handlers = [
    (r"/healthz", HealthHandler),
    (r"/readyz", ReadyHandler),
]
