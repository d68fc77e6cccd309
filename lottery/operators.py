"""The console's operator accounts: roles, passwords, sessions, the sign-in rate limit and the
owners' optional TOTP second factor.

- Roles: `owner` (everything: accounts, refunds, the audit log) and `staff` (catalogue, orders,
  shipping, gifts).
- Passwords are hashed with argon2id at OWASP's recommended setting (19 MiB, 2 passes, one lane:
  about 40 ms of one core here; a sign-in is rate-limited anyway), off the event loop; a name
  that does not exist costs the same check, so timing does not tell names apart.
- A session is a random id (256 bits) in the browser's cookie, stored only as its SHA-256, with
  an idle and an absolute expiry. Every request reads the session and its account together, so a
  disabled account, a changed role or a signed-out session takes effect on the next request.
- Sign-in attempts are counted per account and per client address in fixed windows, before the
  password is checked, by one conditional update each (lottery/storage/operators.py).
- TOTP (RFC 6238, pyotp): 30-second steps, one step of drift either way, each step used once.

The first owner is made from the command line (`python server.py create-owner NAME`), never by a
default password."""
import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import argon2
import pyotp
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import (Forbidden, InvalidInput, OperatorExists, OperatorNotFound, SignInRefused,
                            TooManySignIns)
from lottery.storage import operators as store

ROLES = ("owner", "staff")
ROLE_NAMES = {"owner": "店主", "staff": "店员"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
MIN_PASSWORD, MAX_PASSWORD = 10, 128
MAX_ACCOUNTS = 200
TOTP_ISSUER = "礼物抽奖后台"

# argon2id, OWASP's Password Storage Cheat Sheet setting; the parameters travel in each hash, so a
# later change applies to new passwords and old hashes still verify.
_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=argon2.Type.ID)
# Checked against when the name is unknown, so an unknown name costs what a wrong password does.
_UNKNOWN = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Limits:
    """Session lifetimes and the sign-in rate limit."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    window: timedelta = timedelta(minutes=15)
    per_account: int = 10  # attempts per account name per window
    per_address: int = 30  # attempts per client address per window


@dataclass(frozen=True)
class Operator:
    """The signed-in operator of a request."""

    operator_id: str
    name: str
    role: str
    totp: bool

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(value: object) -> str:
    name = value.strip().lower() if isinstance(value, str) else ""
    if not NAME.match(name):
        raise InvalidInput("账号名须为 3 到 32 个小写字母、数字、点、横线或下划线，以字母或数字开头")
    return name


def check_password(value: object) -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise InvalidInput(f"密码须为 {MIN_PASSWORD} 到 {MAX_PASSWORD} 个字符")
    return value


def check_role(value: object) -> str:
    if value not in ROLES:
        raise InvalidInput("角色必须是店主或店员")
    return value  # type: ignore[return-value]


def operator_view(operator: dict) -> dict:
    """An account as the accounts page lists it (never its hash or secret)."""
    return {"operator_id": operator["_id"], "name": operator["name"], "role": operator["role"],
            "disabled": operator.get("disabled", False), "totp": bool(operator.get("totp_on")),
            "created_at": clock.iso(operator.get("created_at"))}


async def _hash(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, _hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False
    return await asyncio.get_running_loop().run_in_executor(None, verify)


class Operators:
    """Accounts, sign-in and sessions."""

    def __init__(self, db: AsyncDatabase, limits: Limits = Limits()) -> None:
        self.db = db
        self.limits = limits

    # Accounts

    async def create(self, name: str, password: str, role: str) -> dict:
        """A new account; OperatorExists when the name is taken."""
        now = clock.utcnow()
        operator = {"_id": secrets.token_hex(8), "name": check_name(name), "role": check_role(role),
                    "password_hash": await _hash(check_password(password)), "disabled": False,
                    "totp_step": 0, "created_at": now, "updated_at": now}
        if not await store.insert(self.db, operator):
            raise OperatorExists()
        return operator_view(operator)

    async def invite(self, name: str, role: str) -> tuple[dict, str]:
        """A new account with a random first password, shown once to the owner who invites."""
        password = secrets.token_urlsafe(12)
        return await self.create(name, password, role), password

    async def listed(self) -> list[dict]:
        return [operator_view(o) for o in await store.listed(self.db, MAX_ACCOUNTS)]

    async def get(self, operator_id: str) -> dict:
        operator = await store.get(self.db, operator_id) if isinstance(operator_id, str) else None
        if operator is None:
            raise OperatorNotFound()
        return operator_view(operator)

    async def change_role(self, operator_id: str, role: str, by: Operator) -> tuple[dict, dict]:
        """(before, after). An owner cannot demote themselves (so one owner always remains)."""
        before = await self.get(operator_id)
        if operator_id == by.operator_id:
            raise Forbidden("不能修改自己的角色")
        await store.update(self.db, operator_id, {"role": check_role(role)}, clock.utcnow())
        return before, await self.get(operator_id)

    async def set_disabled(self, operator_id: str, disabled: bool, by: Operator) -> tuple[dict, dict]:
        """(before, after). Disabling ends the account's sessions at once (and every request
        checks the account anyway)."""
        before = await self.get(operator_id)
        if operator_id == by.operator_id:
            raise Forbidden("不能停用自己的账号")
        await store.update(self.db, operator_id, {"disabled": disabled}, clock.utcnow())
        if disabled:
            await store.delete_sessions(self.db, operator_id)
        return before, await self.get(operator_id)

    async def change_password(self, me: Operator, current: str, new: str) -> str:
        """Change my password (the current one first); every session of mine ends, and a new
        one is returned for this browser."""
        operator = await store.get(self.db, me.operator_id, with_secrets=True)
        given = current if isinstance(current, str) else ""
        if operator is None or not await _verify(operator["password_hash"], given):
            raise SignInRefused("当前密码错误")
        await store.update(self.db, me.operator_id, {"password_hash": await _hash(check_password(new))},
                           clock.utcnow())
        await store.delete_sessions(self.db, me.operator_id)
        return await self._new_session(me.operator_id)

    # TOTP (owners)

    def new_totp_secret(self) -> str:
        return pyotp.random_base32()

    def totp_uri(self, secret: str, name: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=TOTP_ISSUER)

    async def enable_totp(self, me: Operator, secret: str, code: str) -> None:
        """Turn on the second factor with a secret the owner's app holds, proven by a code."""
        if not me.is_owner:
            raise Forbidden("只有店主可以开启动态码")
        if not isinstance(secret, str) or not re.fullmatch(r"[A-Z2-7]{32}", secret):
            raise InvalidInput("密钥格式错误")
        step = self._totp_step(secret, code)
        if step is None:
            raise InvalidInput("动态码错误")
        await store.update(self.db, me.operator_id, {"totp_secret": secret, "totp_on": True, "totp_step": step},
                           clock.utcnow())

    @staticmethod
    def _totp_step(secret: str, code: object, now: datetime | None = None) -> int | None:
        """The time step `code` is valid for (this one or a neighbour), or None."""
        if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code):
            return None
        totp = pyotp.TOTP(secret)
        at = now or clock.utcnow()
        current = totp.timecode(at)
        for step in (current - 1, current, current + 1):
            if secrets.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    # Signing in and sessions

    async def sign_in(self, name: object, password: object, address: str, code: object = None) -> str:
        """A new session's token, or SignInRefused (whatever was wrong) / TooManySignIns."""
        clean_name = name.strip().lower() if isinstance(name, str) else ""
        now = clock.utcnow()
        window = int(now.timestamp() // self.limits.window.total_seconds())
        expires = now + self.limits.window * 2
        account_key = f"account:{digest(clean_name)}:{window}"
        # The address as a digest: the limit needs to tell addresses apart, not to know them.
        address_key = f"address:{digest(address)}:{window}"
        if not await store.count_attempt(self.db, address_key, self.limits.per_address, expires) \
                or not await store.count_attempt(self.db, account_key, self.limits.per_account, expires):
            raise TooManySignIns()
        operator = await store.by_name(self.db, clean_name) if NAME.match(clean_name) else None
        given = password if isinstance(password, str) and len(password) <= MAX_PASSWORD else ""
        good = await _verify(operator["password_hash"] if operator else _UNKNOWN, given)
        if operator is None or not good or operator.get("disabled"):
            raise SignInRefused()
        if operator.get("totp_on"):
            step = self._totp_step(operator["totp_secret"], code)
            if step is None or not await store.use_totp_step(self.db, operator["_id"], step):
                raise SignInRefused()
        await store.forget_attempts(self.db, account_key)
        return await self._new_session(operator["_id"])

    async def _new_session(self, operator_id: str) -> str:
        token = secrets.token_urlsafe(32)
        now = clock.utcnow()
        await store.insert_session(self.db, {
            "_id": digest(token), "operator_id": operator_id, "created_at": now, "seen_at": now,
            "idle_until": now + self.limits.idle, "expires_at": now + self.limits.absolute})
        return token

    async def session(self, token: str | None) -> Operator | None:
        """The operator of a live session, or None (unknown, idle or absolute expiry passed,
        account disabled). Extends the idle expiry, at most once a minute."""
        if not token or len(token) > 128:
            return None
        now = clock.utcnow()
        found = await store.session_with_operator(self.db, digest(token), now)
        if found is None:
            return None
        session, operator = found
        if operator.get("disabled"):
            return None
        if now - clock.as_utc(session["seen_at"]) > timedelta(minutes=1):
            await store.touch_session(self.db, session["_id"], now + self.limits.idle, now)
        return Operator(operator["_id"], operator["name"], operator["role"], bool(operator.get("totp_on")))

    async def sign_out(self, token: str | None) -> None:
        if token and len(token) <= 128:
            await store.delete_session(self.db, digest(token))
