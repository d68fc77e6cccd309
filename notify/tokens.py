"""The mini-program's access token, one for every process, kept in MongoDB.

Fetched with `cgi-bin/stable_token`, whose normal mode returns the token already in force rather
than replacing it, so processes never invalidate each other's token. One process at a time
refreshes (a lease on the token document), ahead of expiry; the others keep using the stored
token meanwhile. A forced refresh happens only when WeChat rejects the token (40001/42001), and
at most 20 a day, 30 s apart, as WeChat allows.

The token document (`wechat_tokens`, `_id` = appid) is the only place the token is stored; it is
never logged."""
import asyncio
import logging
from datetime import datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, metrics
from lottery.storage import leases, tokens
from wechat.client import WeChatClient, WeChatError

log = logging.getLogger(__name__)

FORCED_PER_DAY = 20
FORCED_SPACING = timedelta(seconds=30)


class AccessTokens:
    """A cached view of the shared token, and its refreshing."""

    def __init__(self, db: AsyncDatabase, wechat: WeChatClient,
                 refresh_ahead: timedelta = timedelta(minutes=5),
                 lease: timedelta = timedelta(seconds=15), wait_seconds: float = 10.0) -> None:
        self.db = db
        self.wechat = wechat
        self.refresh_ahead = refresh_ahead
        self.lease = lease
        self.wait_seconds = wait_seconds
        self.owner = leases.owner_id()
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()

    @property
    def doc_id(self) -> str:
        return self.wechat.appid or "default"

    def _fresh(self, now: datetime) -> bool:
        return self._token is not None and self._expires_at is not None \
            and self._expires_at - self.refresh_ahead > now

    async def get(self) -> str:
        """A token good for at least `refresh_ahead`, refreshing it if nobody else does."""
        if self._fresh(clock.utcnow()):
            return self._token
        async with self._lock:
            if self._fresh(clock.utcnow()):
                return self._token
            return await self._obtain(rejected=None)

    async def replace(self, rejected: str) -> str:
        """WeChat answered 40001/42001 for `rejected`: a new token, refreshed once however many
        requests saw the rejection at the same time."""
        async with self._lock:
            if self._token is not None and self._token != rejected and self._fresh(clock.utcnow()):
                return self._token  # another request of this process replaced it already
            return await self._obtain(rejected=rejected)

    async def _obtain(self, rejected: str | None) -> str:
        deadline = asyncio.get_running_loop().time() + self.wait_seconds
        while True:
            now = clock.utcnow()
            doc = await tokens.get(self.db, self.doc_id)
            if self._usable(doc, now, rejected, ahead=True):
                return self._keep(doc)
            if await tokens.take_refresh(self.db, self.doc_id, self.owner, now, now + self.lease):
                try:
                    return await self._refresh(rejected)
                finally:
                    await tokens.release_refresh(self.db, self.doc_id, self.owner)
            # Another process is refreshing. Its stored token stays good until it expires.
            if rejected is None and self._usable(doc, now, None, ahead=False):
                return self._keep(doc)
            if asyncio.get_running_loop().time() >= deadline:
                raise WeChatError(None, "access token refresh in progress elsewhere", network=True)
            await asyncio.sleep(0.1)

    def _usable(self, doc: dict, now: datetime, rejected: str | None, ahead: bool) -> bool:
        token, expires_at = doc.get("token"), doc.get("expires_at")
        if not token or expires_at is None or token == rejected:
            return False
        return clock.as_utc(expires_at) - (self.refresh_ahead if ahead else timedelta(seconds=5)) > now

    def _keep(self, doc: dict) -> str:
        self._token, self._expires_at = doc["token"], clock.as_utc(doc["expires_at"])
        return self._token

    async def _refresh(self, rejected: str | None) -> str:
        """Under the lease: re-read (someone may have just refreshed), then ask WeChat."""
        now = clock.utcnow()
        doc = await tokens.get(self.db, self.doc_id)
        if self._usable(doc, now, rejected, ahead=True):
            return self._keep(doc)
        force = rejected is not None and rejected == doc.get("token") and self._may_force(doc, now)
        if rejected is not None and not force:
            log.warning("access token rejected but a forced refresh is not allowed now "
                        "(%d today, last %s); asking for the current one", doc.get("forced_count", 0),
                        clock.iso(doc.get("forced_at")))
        try:
            token, expires_in = await self.wechat.stable_token(force_refresh=force)
        except WeChatError:
            metrics.ACCESS_TOKEN_REFRESHES.labels("failed").inc()
            raise
        metrics.ACCESS_TOKEN_REFRESHES.labels("forced" if force else "refreshed").inc()
        expires_at = now + timedelta(seconds=expires_in)
        update: dict = {"token": token, "expires_at": expires_at, "refreshed_at": now}
        if force:
            day = now.date().isoformat()
            same_day = doc.get("forced_day") == day
            update.update(forced_at=now, forced_day=day,
                          forced_count=(doc.get("forced_count", 0) + 1) if same_day else 1)
        await tokens.store(self.db, self.doc_id, update)
        log.info("access token %s, valid %d s", "force-refreshed" if force else "refreshed", expires_in)
        self._token, self._expires_at = token, expires_at
        return token

    @staticmethod
    def _may_force(doc: dict, now: datetime) -> bool:
        forced_at = doc.get("forced_at")
        if forced_at is not None and now - clock.as_utc(forced_at) < FORCED_SPACING:
            return False
        if doc.get("forced_day") == now.date().isoformat() and doc.get("forced_count", 0) >= FORCED_PER_DAY:
            return False
        return True
