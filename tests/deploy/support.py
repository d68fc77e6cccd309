"""Shared by the deployment tests: members signed in through nginx, gifts, waiting pages and
what their processes logged."""
import asyncio
from datetime import datetime, timedelta, timezone

from lottery.accounts import member_id_for
from tests.api import Api
from tests.servers import ServerProcess
from tests.waiting import until
from tests.ws import LiveClient

HANDSHAKE = "101 GET /ws"  # a web process's access-log line for an accepted websocket


async def sign_in(api: Api, prefix: str, count: int) -> dict[str, str]:
    """`count` members signed in through nginx: member id -> login key (openids `o_{prefix}{i}`)."""
    codes = [f"{prefix}{i}" for i in range(count)]
    keys = await asyncio.gather(*(api.login(code) for code in codes))
    return {member_id_for(f"o_{code}"): key for code, key in zip(codes, keys)}


def items(count: int) -> list[dict]:
    return [{"name": f"奖品{i}"} for i in range(count)]


def in_seconds(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def join_all(api: Api, keys: list[str], order_id: str, body: dict | None = None) -> list[int]:
    """Every key joins the gift at once (through nginx); the statuses, in order."""
    answers = await asyncio.gather(*(api.join(key, order_id, body) for key in keys))
    return [status for status, _ in answers]


async def watching(base_url: str, keys: list[str], order_ids: list[str]) -> list[LiveClient]:
    """One waiting page per key (half authenticate in the URL as the mini-program does, half
    with an `auth` frame as the browser does), each following these gifts; returned once every
    one has its snapshots."""
    clients = [LiveClient(base_url, key, key_in_url=i % 2 == 0).start() for i, key in enumerate(keys)]
    for client in clients:
        for order_id in order_ids:
            client.subscribe(order_id)
    try:
        await until(lambda: all(all(c.gifts[o] for o in order_ids) for c in clients), timeout=60)
    except AssertionError:
        await close_all(clients)
        raise AssertionError(f"{sum(not all(c.gifts[o] for o in order_ids) for c in clients)} of {len(clients)} "
                             "clients got no snapshot") from None
    return clients


async def results(clients: list[LiveClient], order_id: str, timeout: float = 60) -> None:
    """Wait until every client shows the gift's result (or say who does not, and what they saw)."""
    try:
        await until(lambda: all(order_id in c.results for c in clients), timeout=timeout, interval=0.1)
    except AssertionError:
        missing = [c for c in clients if order_id not in c.results]
        raise AssertionError(f"{len(missing)} of {len(clients)} clients have no result for {order_id}; the first: "
                             f"connected {missing[0].connected}, connects {missing[0].connects}, "
                             f"version {missing[0].gifts.get(order_id)}, last frames {missing[0].received[-3:]}") from None


async def close_all(clients: list[LiveClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients))


def handshakes(process: ServerProcess, since: int = 0) -> int:
    """Websockets this process accepted, counted in its log from offset `since`."""
    return process.log_text()[since:].count(HANDSHAKE)


def log_marks(processes: list[ServerProcess]) -> list[int]:
    """Where each process's log ends now (for `handshakes(since=...)`)."""
    return [len(p.log_text()) for p in processes]


def outcome(me: dict) -> tuple[str, dict | None]:
    """What a `me` says of the result: its state and item."""
    return me["state"], me.get("item")


def expected_outcome(gift: dict, member_id: str, joined: set[str]) -> tuple[str, dict | None]:
    """What a finished gift must tell this member: their item, lost, or closed (never joined)."""
    winners = gift["draw"]["winners"]
    if member_id in winners:
        return "won", gift["items"][winners.index(member_id)]
    return ("lost" if member_id in joined else "closed"), None
