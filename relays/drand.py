"""drand's HTTP relay API (`GET <relay>/{chain_hash}/public/{round}`) over Tornado's client.

The answer is only read here; lottery/beacon.py verifies the round's signature against the
pinned chain before anything uses it."""
import json

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from lottery.beacon import Fetch, RelayFailed, RoundNotOut

MAX_ANSWER = 4096  # a round's JSON is about 250 bytes


def relay_fetcher(timeout: float = 2.0, http: AsyncHTTPClient | None = None) -> Fetch:
    """A `Fetch` for lottery.beacon.Beacon: each request gives up after `timeout` seconds."""
    async def fetch(relay: str, chain_hash: str, round_: int) -> dict:
        url = f"{relay.rstrip('/')}/{chain_hash}/public/{round_}"
        client = http or AsyncHTTPClient()  # the running loop's shared client
        try:
            response = await client.fetch(url, connect_timeout=timeout, request_timeout=timeout,
                                          follow_redirects=False)
        except HTTPClientError as exc:
            if exc.code in (404, 425):  # drand: not out yet (425 the next round, 404 further ahead)
                raise RoundNotOut() from exc
            raise RelayFailed(f"HTTP {exc.code}") from exc
        except (OSError, TimeoutError) as exc:
            raise RelayFailed(type(exc).__name__) from exc
        if len(response.body) > MAX_ANSWER:
            raise RelayFailed("answer too long")
        try:
            answer = json.loads(response.body)
        except ValueError as exc:
            raise RelayFailed("not JSON") from exc
        if not isinstance(answer, dict):
            raise RelayFailed("not a round")
        return answer

    return fetch
