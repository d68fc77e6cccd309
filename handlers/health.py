"""Liveness for load balancers."""
from handlers.base import BaseHandler


class HealthHandler(BaseHandler):
    async def prepare(self) -> None:
        self.current_user = None  # no login here

    async def get(self) -> None:
        """200 when the database answers a ping, 503 otherwise."""
        if await self.health.database_ok():
            self.reply({"status": "ok"})
        else:
            self.reply({"status": "database unavailable"}, status=503)


default_handlers = [
    (r"/healthz", HealthHandler),
]
