"""The public randomness beacon a draw mixes in: a drand round, fetched from any of several HTTP
relays and used only once its BLS signature verifies against the pinned chain.

A relay's word is never trusted: a round whose signature does not verify is refused and the next
relay asked. While the round is not out yet, or no relay answers, the beacon waits with backoff,
up to the wait the caller gives (the draw gives up for now and resumes at a later sweep: the
gift stays `drawing`). Whether a draw may ever go ahead without its round is the operator's
documented choice (`beacon_fallback_seconds`), recorded in the proof (docs/fairness.md)."""
import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from lottery import drand

log = logging.getLogger(__name__)

KEPT_ROUNDS = 1024  # verified rounds remembered


class RoundNotOut(Exception):
    """A relay says the round is not out yet (drand answers 425, or 404 further ahead)."""


class RelayFailed(Exception):
    """A relay did not answer usefully: down, too slow, not JSON, not drand's shape."""


# fetch(relay base URL, chain hash, round) -> the relay's JSON answer; raises RoundNotOut or RelayFailed.
Fetch = Callable[[str, str, int], Awaitable[dict]]


@dataclass(frozen=True)
class Round:
    """A verified round of the chain."""

    round: int
    signature: str
    randomness: str


class Beacon:
    """Verified rounds of one pinned chain, from a list of relays tried in turn."""

    def __init__(self, chain: drand.Chain, relays: list[str], fetch: Fetch, fallback_after: float = 0.0,
                 retry_base: float = 0.05, retry_cap: float = 2.0) -> None:
        if not relays:
            raise ValueError("the beacon needs at least one relay")
        self.chain = chain
        self.relays = list(relays)
        self.fetch = fetch
        # Seconds after the freeze after which a draw may go ahead without its round, the proof
        # saying so; 0: never (the draw waits for the beacon however long it takes).
        self.fallback_after = fallback_after
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._verified: dict[int, Round] = {}
        self._preferred = 0  # the relay that answered last: asked first next time

    def round_for(self, frozen_at: float) -> int:
        """The round a draw frozen at `frozen_at` (unix seconds) uses: the first one after it."""
        return self.chain.first_round_after(frozen_at)

    def may_go_without(self, frozen_at: float, now: float) -> bool:
        """Whether the operator's policy lets a draw frozen at `frozen_at` go ahead without its round."""
        return self.fallback_after > 0 and now - frozen_at >= self.fallback_after

    def policy(self) -> str:
        """The no-beacon policy in words, as the proof states it."""
        if self.fallback_after <= 0:
            return "never without the beacon"
        return f"without the beacon after {self.fallback_after:g} s with no relay answering"

    async def get(self, round_: int, wait: float) -> Round | None:
        """Round `round_`, verified; waits for it (until it is out, and with backoff while no relay
        answers) at most `wait` seconds; None if it did not come."""
        if round_ in self._verified:
            return self._verified[round_]
        deadline = time.monotonic() + wait
        failures = 0
        while True:
            ahead = self.chain.round_time(round_) - time.time()
            if ahead > 0:  # not out yet: no relay can have it
                if ahead > deadline - time.monotonic():
                    return None
                await asyncio.sleep(ahead)
            found = await self._ask_relays(round_)
            if found is not None:
                return found
            failures += 1
            pause = min(self.retry_cap, self.retry_base * 2 ** (failures - 1))
            if time.monotonic() + pause > deadline:
                return None
            await asyncio.sleep(pause)

    async def _ask_relays(self, round_: int) -> Round | None:
        order = self.relays[self._preferred:] + self.relays[:self._preferred]
        for relay in order:
            try:
                answer = await self.fetch(relay, self.chain.chain_hash, round_)
            except RoundNotOut:
                continue
            except RelayFailed as exc:
                log.warning("beacon relay %s: round %d: %s", relay, round_, exc)
                continue
            signature = answer.get("signature") if isinstance(answer, dict) else None
            if answer.get("round") != round_ or not drand.verify(self.chain, round_, signature):
                log.warning("beacon relay %s served round %d with a signature that does not verify", relay, round_)
                continue
            self._preferred = self.relays.index(relay)
            found = Round(round_, signature, drand.randomness(signature))
            if len(self._verified) >= KEPT_ROUNDS:
                self._verified.pop(next(iter(self._verified)))
            self._verified[round_] = found
            return found
        return None
