"""Draws that stop for good at a chosen point: what a process killed mid-draw leaves behind."""
import asyncio

from lottery.draw import Draws
from lottery.storage import joins

FOREVER = 3600


def stalling_draws(stall: str) -> type[Draws]:
    """A Draws class that stalls at `before_finish` or `after_winners=N`."""
    point, _, count = stall.partition("=")
    if point not in ("before_finish", "after_winners"):
        raise ValueError(f"unknown stall point {stall!r}")

    class StallingDraws(Draws):
        async def _finish(self, summaries: dict[str, dict], refunds: dict[str, dict[int, int]]) -> list[str]:
            if point == "before_finish":
                await asyncio.sleep(FOREVER)
            return await super()._finish(summaries, refunds)

        async def _write_winners(self, winners: list[tuple[str, str, int]]) -> None:
            if point != "after_winners":
                return await super()._write_winners(winners)
            for winner in winners[:int(count)]:  # one at a time, so the copy stops half-way
                await joins.write_winners(self.db, [winner])
            await asyncio.sleep(FOREVER)

    return StallingDraws
