"""Liveness for load balancers."""
from pymongo.errors import PyMongoError

from handlers.base import BaseHandler


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        """200 when the database answers a ping, 503 otherwise."""
        try:
            await self.settings["db"].command("ping")
        except PyMongoError:
            self.set_status(503)
            self.finish({"status": "database unavailable"})
            return
        self.reply({"status": "ok"})


default_handlers = [
    (r"/healthz", HealthHandler),
]
