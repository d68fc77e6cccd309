"""Bot resistance (optional, off by default): before a member's join, WeChat's user risk rank for
marketing activities (`getuserriskrank`, 0 lowest to 4), refusing members at or above
`--risk_rank_refuse_at`. The answer is kept on the member for a day, so WeChat is asked at most
once a day per member, on their first join of that day. WeChat unreachable: the join goes ahead
(bots are a nuisance, not a reason to refuse everyone). Every refusal is counted
(`gift_lottery_risk_refusals_total`)."""
import logging
from datetime import timedelta
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.errors import RiskyMember, UpstreamFailure
from lottery.storage import members

log = logging.getLogger(__name__)

CACHE_FOR = timedelta(days=1)


class RiskRanker(Protocol):
    async def risk_rank(self, openid: str, client_ip: str) -> int: ...


class RiskGate:
    def __init__(self, db: AsyncDatabase, ranker: RiskRanker, refuse_at: int) -> None:
        self.db = db
        self.ranker = ranker
        self.refuse_at = refuse_at

    async def admit(self, member_id: str, client_ip: str) -> None:
        """RiskyMember when the member's (cached) risk rank is at or above the limit."""
        now = clock.utcnow()
        member = await members.get(self.db, member_id) or {}
        cached = member.get("risk") or {}
        if cached.get("until") is not None and clock.as_utc(cached["until"]) > now:
            rank = cached["rank"]
        else:
            try:
                rank = await self.ranker.risk_rank(member.get("openid", ""), client_ip)
            except UpstreamFailure as exc:
                log.warning("risk rank of %s unavailable (%s); the join goes ahead", member_id, exc)
                return
            await members.remember_risk(self.db, member_id, rank, now + CACHE_FOR)
        if rank >= self.refuse_at:
            metrics.RISK_REFUSALS.inc()
            log.warning("member %s refused: risk rank %d", member_id, rank)
            raise RiskyMember()
