"""The audit log: who did what to which thing, with what it was before and after, when, under which
request id. Every admin action, from the console or the bearer-token API, is written once, by
lottery/admin_actions.py, after it took effect. Entries are never changed or removed (the storage
module has no such function and no route offers one); owners read them in the console.

Secrets never enter it: passwords, TOTP secrets, tokens and session ids are not passed in, and a
postal address is reduced to what the operator needs to recognise it (`masked_address`)."""
import secrets
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import InvalidInput
from lottery.storage import audit as store

PAGE_SIZE = 50
API_TOKEN = "api-token"


@dataclass(frozen=True)
class Actor:
    """Who asks for an admin action: a console account (its name) or the bearer token."""

    who: str
    request_id: str
    operator_id: str | None = None


def entry_view(entry: dict) -> dict:
    return {"entry_id": entry["_id"], "at": clock.iso(entry["at"]), "who": entry["who"], "action": entry["action"],
            "target": entry["target"], "before": entry.get("before"), "after": entry.get("after"),
            "request_id": entry["request_id"]}


class AuditLog:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def record(self, actor: Actor, action: str, target: str, before: object = None, after: object = None) -> None:
        now = clock.utcnow()
        await store.insert(self.db, {
            "_id": store.entry_id(now, secrets.token_hex(6)), "at": now, "who": actor.who,
            "operator_id": actor.operator_id, "action": action, "target": target, "before": before, "after": after,
            "request_id": actor.request_id})

    async def page(self, before: str = "") -> dict:
        """The newest entries (older than the cursor `before`), newest first."""
        if before and not (isinstance(before, str) and len(before) <= 32 and before.isalnum()):
            raise InvalidInput("cursor 格式错误")
        found = await store.page(self.db, before, PAGE_SIZE + 1)
        return {"entries": [entry_view(e) for e in found[:PAGE_SIZE]],
                "next_cursor": found[PAGE_SIZE - 1]["_id"] if len(found) > PAGE_SIZE else None}

    async def of_target(self, target: str) -> list[dict]:
        return [entry_view(e) for e in await store.of_target(self.db, target, 200)]
