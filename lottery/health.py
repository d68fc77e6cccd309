"""Whether this process can do its work: the database answers."""
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError


class Health:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def database_ok(self) -> bool:
        """True when the database answers a ping."""
        try:
            await self.db.command("ping")
        except PyMongoError:
            return False
        return True
