"""The database client and indexes."""
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


def client_for(uri: str, max_pool_size: int = 50, server_selection_ms: int = 5000,
               **kwargs) -> AsyncMongoClient:
    """An async client. Time zones are kept so datetimes come back aware (UTC)."""
    return AsyncMongoClient(uri, tz_aware=True, maxPoolSize=max_pool_size,
                            serverSelectionTimeoutMS=server_selection_ms, **kwargs)


def database_name(uri: str, default: str = "gift_lottery") -> str:
    """The database named in the URI path, or the default."""
    from pymongo.uri_parser import parse_uri

    return parse_uri(uri).get("database") or default


async def ensure_indexes(db: AsyncDatabase) -> None:
    """Create every index the queries rely on. Idempotent; run at startup."""
    from lottery.storage import draws, gifts, members, notifications

    await members.ensure_indexes(db)
    await gifts.ensure_indexes(db)
    await draws.ensure_indexes(db)
    await notifications.ensure_indexes(db)
