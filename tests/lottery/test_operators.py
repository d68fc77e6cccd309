"""Operator accounts in the domain, against the real database: passwords stored as argon2id
hashes only; sessions stored as digests, ending at their idle and absolute expiry, at sign-out and
the moment their account is disabled; sign-in attempts counted atomically per account and per
address however many race; a TOTP code used once; the audit log written once per action."""
import asyncio
import hashlib
from datetime import datetime, timedelta

import pyotp
import pytest

import lottery.storage.audit as store
from lottery import clock
from lottery.audit import Actor, AuditLog
from lottery.errors import Forbidden, InvalidInput, OperatorExists, SignInRefused, TooManySignIns
from lottery.operators import Limits, Operators

PASSWORD = "correct horse battery"


@pytest.fixture
def operators(db) -> Operators:
    return Operators(db, Limits(per_account=5, per_address=8))


@pytest.mark.gen_test(timeout=60)
async def test_a_password_is_stored_only_as_an_argon2id_hash_and_a_session_only_as_a_digest(db, operators):
    await operators.create("boss", PASSWORD, "owner")
    stored = await db.operators.find_one({"name": "boss"})
    assert stored["password_hash"].startswith("$argon2id$") and PASSWORD not in str(stored)
    token = await operators.sign_in("boss", PASSWORD, "10.0.0.1")
    assert await db.operator_sessions.find_one({"_id": token}) is None
    assert await db.operator_sessions.find_one({"_id": hashlib.sha256(token.encode()).hexdigest()}) is not None
    me = await operators.session(token)
    assert (me.name, me.role, me.is_owner) == ("boss", "owner", True)


@pytest.mark.gen_test(timeout=60)
async def test_wrong_password_unknown_name_and_disabled_account_get_the_same_refusal(operators):
    owner = await operators.create("boss", PASSWORD, "owner")
    staff = await operators.create("clerk", PASSWORD, "staff")
    for name, password in (("boss", "wrong password!"), ("nobody", PASSWORD), ("boss", {"$ne": ""})):
        with pytest.raises(SignInRefused):
            await operators.sign_in(name, password, "10.0.0.1")
    me = await operators.session(await operators.sign_in("boss", PASSWORD, "10.0.0.1"))
    await operators.set_disabled(staff["operator_id"], True, me)
    with pytest.raises(SignInRefused):
        await operators.sign_in("clerk", PASSWORD, "10.0.0.2")
    with pytest.raises(Forbidden):
        await operators.set_disabled(owner["operator_id"], True, me)  # never oneself
    with pytest.raises(OperatorExists):
        await operators.create("boss", PASSWORD, "staff")
    with pytest.raises(InvalidInput):
        await operators.create("x", "short", "owner")


@pytest.mark.gen_test(timeout=120)
async def test_racing_sign_ins_are_counted_atomically_per_account_and_per_address(db, operators):
    await operators.create("boss", PASSWORD, "owner")
    answers = await asyncio.gather(*(operators.sign_in("boss", "wrong password!", f"10.0.0.{i}") for i in range(12)),
                                   return_exceptions=True)
    kinds = sorted(type(a).__name__ for a in answers)
    assert kinds.count("SignInRefused") == 5 and kinds.count("TooManySignIns") == 7  # 5 a window, not one more
    with pytest.raises(TooManySignIns):
        await operators.sign_in("boss", PASSWORD, "10.0.0.99")  # even the right password, until the window ends
    # Per address: 8 attempts from one address across names, then refused for any name.
    answers = await asyncio.gather(*(operators.sign_in(f"user{i}", PASSWORD, "192.0.2.7") for i in range(12)),
                                   return_exceptions=True)
    assert sum(isinstance(a, TooManySignIns) for a in answers) == 4
    assert "192.0.2.7" not in str(await db.sign_in_attempts.find().to_list())  # addresses only as digests


@pytest.mark.gen_test(timeout=60)
async def test_a_session_ends_when_idle_at_its_absolute_expiry_at_sign_out_and_when_its_account_is_disabled(db):
    operators = Operators(db, Limits(idle=timedelta(minutes=30), absolute=timedelta(hours=12)))
    await operators.create("boss", PASSWORD, "owner")
    staff = await operators.create("clerk", PASSWORD, "staff")
    owner = await operators.session(await operators.sign_in("boss", PASSWORD, "a"))

    idle = await operators.sign_in("clerk", PASSWORD, "b")
    digest = hashlib.sha256(idle.encode()).hexdigest()
    session = await db.operator_sessions.find_one({"_id": digest})
    await db.operator_sessions.update_one({"_id": digest}, {"$set": {"idle_until": session["created_at"]}})
    assert await operators.session(idle) is None

    old = await operators.sign_in("clerk", PASSWORD, "b")
    digest = hashlib.sha256(old.encode()).hexdigest()
    session = await db.operator_sessions.find_one({"_id": digest})
    await db.operator_sessions.update_one({"_id": digest}, {"$set": {"expires_at": session["created_at"]}})
    assert await operators.session(old) is None  # however recently used

    out = await operators.sign_in("clerk", PASSWORD, "b")
    await operators.sign_out(out)
    assert await operators.session(out) is None

    live = await operators.sign_in("clerk", PASSWORD, "b")
    assert await operators.session(live) is not None
    await operators.set_disabled(staff["operator_id"], True, owner)
    assert await operators.session(live) is None
    assert await db.operator_sessions.count_documents({"operator_id": staff["operator_id"]}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_an_owners_totp_code_is_needed_once_turned_on_and_is_used_only_once(operators):
    await operators.create("boss", PASSWORD, "owner")
    me = await operators.session(await operators.sign_in("boss", PASSWORD, "a"))
    secret = operators.new_totp_secret()
    with pytest.raises(InvalidInput):
        await operators.enable_totp(me, secret, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    await operators.enable_totp(me, secret, pyotp.TOTP(secret).now())
    with pytest.raises(SignInRefused):
        await operators.sign_in("boss", PASSWORD, "a")  # no code
    code = pyotp.TOTP(secret).at(datetime.now() + timedelta(seconds=30))
    assert await operators.sign_in("boss", PASSWORD, "a", code)  # the next step's code (clock drift)
    with pytest.raises(SignInRefused):
        await operators.sign_in("boss", PASSWORD, "a", code)  # the same code again: a replay


@pytest.mark.gen_test(timeout=60)
async def test_the_audit_log_keeps_entries_newest_first_and_offers_no_way_to_change_them(db):
    audit = AuditLog(db)
    for n in range(3):
        await audit.record(Actor("boss", f"req{n}"), "product.change", "product:p1", {"price": n}, {"price": n + 1})
    found = await audit.page()
    assert [e["request_id"] for e in found["entries"]] == ["req2", "req1", "req0"]
    assert found["entries"][0]["before"] == {"price": 2} and found["entries"][0]["who"] == "boss"
    public = {name for name in dir(store) if not name.startswith("_")}
    assert not public & {"update", "delete", "replace", "remove"}


@pytest.mark.gen_test(timeout=60)
async def test_audit_entries_made_within_one_millisecond_keep_their_order(db, monkeypatch):
    instant = clock.utcnow()
    monkeypatch.setattr(clock, "utcnow", lambda: instant)
    audit = AuditLog(db)
    for n in range(20):
        await audit.record(Actor("boss", f"req{n}"), "product.change", "product:p1")
    found = await audit.page()
    assert [e["request_id"] for e in found["entries"]] == [f"req{n}" for n in reversed(range(20))]
    assert [e["request_id"] for e in await audit.of_target("product:p1")] == [f"req{n}" for n in range(20)]
