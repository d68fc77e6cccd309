"""The database client and every collection's indexes."""
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.uri_parser import parse_uri

from lottery.storage import gifts, joins, login_keys, members, notifications, outbox


def client_for(uri: str, max_pool_size: int = 50, server_selection_ms: int = 5000,
               **kwargs) -> AsyncMongoClient:
    """An async client. Time zones are kept so datetimes come back aware (UTC)."""
    return AsyncMongoClient(uri, tz_aware=True, maxPoolSize=max_pool_size,
                            serverSelectionTimeoutMS=server_selection_ms, **kwargs)


def database_name(uri: str, default: str = "gift_lottery") -> str:
    """The database named in the URI path, or the default."""
    return parse_uri(uri).get("database") or default


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Create every index the queries rely on. Idempotent; run at startup."""
    for collection in (members, login_keys, gifts, joins, outbox, notifications):
        await collection.ensure_indexes(db)
