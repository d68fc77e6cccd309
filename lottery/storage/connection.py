"""The database client and every collection's indexes, retention included."""
from dataclasses import dataclass
from datetime import timedelta

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.uri_parser import parse_uri

from lottery import metrics
from lottery.storage import (audit, categories, claims, gifts, joins, login_keys, members, notifications, operators,
                             orders, outbox, products, reconciliations, refunds, text_checks)


class CommandMetrics(monitoring.CommandListener):
    """Each command's latency by its name (PyMongo's command monitoring): never its arguments."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        metrics.MONGO_COMMAND_SECONDS.labels(event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        metrics.MONGO_COMMAND_SECONDS.labels(event.command_name).observe(event.duration_micros / 1e6)
        metrics.MONGO_COMMAND_FAILURES.labels(event.command_name).inc()


class Availability(monitoring.TopologyListener):
    """Whether the client can write right now, from PyMongo's own view of the deployment (a
    failed operation or heartbeat marks the server unknown at once; it is checked every half
    second until it answers again). Read without a round trip, so routes can refuse fast
    while the database is away."""

    def __init__(self) -> None:
        self.available = True  # until PyMongo has seen otherwise
        self.reason = ""

    def opened(self, event: monitoring.TopologyOpenedEvent) -> None:
        pass

    def closed(self, event: monitoring.TopologyClosedEvent) -> None:
        pass

    def description_changed(self, event: monitoring.TopologyDescriptionChangedEvent) -> None:
        before, after = event.previous_description, event.new_description
        if after.has_writable_server():
            self.available, self.reason = True, ""
        elif before.has_writable_server():
            errors = [str(server.error) for server in after.server_descriptions().values() if server.error]
            self.available = False
            self.reason = errors[0][:200] if errors else "no writable server"


def availability(client: AsyncMongoClient) -> Availability:
    """The client's Availability (every client_for client has one)."""
    return next(listener for listener in client.options.event_listeners if isinstance(listener, Availability))


def client_for(uri: str, max_pool_size: int = 50, server_selection_ms: int = 5000,
               event_listeners: list | None = None, **kwargs) -> AsyncMongoClient:
    """An async client. Time zones are kept so datetimes come back aware (UTC). Heartbeats every
    2 s (not 10) with a 5 s socket timeout (not 20): an idle process notices a lost or hung
    database soon, and then routes refuse at once. Operations have no timeout of their own: each
    request and each background round gives its own budget (`pymongo.timeout`)."""
    return AsyncMongoClient(uri, tz_aware=True, maxPoolSize=max_pool_size,
                            serverSelectionTimeoutMS=server_selection_ms, heartbeatFrequencyMS=2000,
                            connectTimeoutMS=5000,
                            event_listeners=[CommandMetrics(), Availability(), *(event_listeners or [])],
                            **kwargs)


def database_name(uri: str, default: str = "gift_lottery") -> str:
    """The database named in the URI path, or the default."""
    return parse_uri(uri).get("database") or default


@dataclass(frozen=True)
class Retention:
    """How long records with no further use are kept (gifts, joins, orders, proofs are kept
    for good). Expired login keys go as soon as they expire."""

    notifications: timedelta = timedelta(days=90)  # a notification entry once final
    outbox: timedelta = timedelta(days=30)  # an outbox record once done


async def ensure_indexes(db: AsyncDatabase, retention: Retention = Retention()) -> None:
    """Create every index the queries rely on, and the TTL indexes of retention. Idempotent;
    run at startup (a changed retention applies to the existing index)."""
    for collection in (members, login_keys, gifts, orders, joins, categories, products, claims, refunds,
                       reconciliations, operators, audit, text_checks):
        await collection.ensure_indexes(db)
    await outbox.ensure_indexes(db, retention.outbox)
    await notifications.ensure_indexes(db, retention.notifications)
