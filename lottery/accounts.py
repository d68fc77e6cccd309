"""Members: WeChat login, login keys, and who is asking."""
import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Awaitable, Callable, NamedTuple

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import LoginExpired, UpstreamError, UpstreamFailure
from lottery.key_lookup import KeyLookup
from lottery.storage import login_keys, members

log = logging.getLogger(__name__)


class Session(NamedTuple):
    """What WeChat's jscode2session answers."""

    openid: str
    session_key: str


SessionResolver = Callable[[str], Awaitable[Session]]


def member_id_for(openid: str) -> str:
    """A member's id, derived from the openid so login is one upsert with no read."""
    return "m" + hashlib.sha256(openid.encode()).hexdigest()[:23]


def key_digest(login_key: str) -> str:
    """Login keys are stored only as digests: a database dump holds no usable key."""
    return hashlib.sha256(login_key.encode()).hexdigest()


class Accounts:
    """Login and authentication."""

    def __init__(self, db: AsyncDatabase, resolve_session: SessionResolver,
                 key_lifetime: timedelta = timedelta(days=30)) -> None:
        self.db = db
        self.resolve_session = resolve_session
        self.key_lifetime = key_lifetime
        self.keys = KeyLookup(db)

    async def login(self, code: str) -> str:
        """Exchange a wx.login code for a new login key (256 random bits)."""
        try:
            session = await self.resolve_session(code)
        except UpstreamFailure as exc:
            log.warning("WeChat login failed: %s", exc)
            raise UpstreamError(f"微信登录失败：{exc}") from exc
        member_id = await self.ensure_member(session.openid, session_key=session.session_key)
        return await self.issue_key(member_id)

    async def ensure_member(self, openid: str, **fields) -> str:
        """Create or refresh the member with this openid; returns its id."""
        member_id = member_id_for(openid)
        await members.upsert(self.db, member_id, openid, fields, clock.utcnow())
        return member_id

    async def issue_key(self, member_id: str) -> str:
        login_key = secrets.token_urlsafe(32)
        digest, expires_at = key_digest(login_key), clock.utcnow() + self.key_lifetime
        await login_keys.insert(self.db, digest, member_id, expires_at)
        self.keys.learn(digest, member_id, expires_at)
        return login_key

    async def member_for(self, login_key: str | None) -> str | None:
        """The member id behind a live login key, or None."""
        if not login_key:
            return None
        return await self.keys.member_for(key_digest(login_key))

    async def authenticate(self, login_key: str | None) -> str:
        """The member id behind a live login key; LoginExpired otherwise."""
        member_id = await self.member_for(login_key)
        if member_id is None:
            raise LoginExpired()
        return member_id
