"""Entry conditions a sender may put on a gift, checked on every join before its claim:

- a pass phrase (口令): compared after normalisation (below); a member's guesses are counted
  (storage/guesses.py), and after GUESS_LIMIT wrong ones within GUESS_WINDOW they are refused for
  LOCKOUT, right phrase or not;
- group only: the gift is bound to one WeChat group's `opengid` (the sender opens the shared card
  in the group); a joiner sends `wx.getGroupEnterInfo`'s encrypted data, decrypted with their
  session key like getUserInfo's, its watermark checked (appid and age).

The gift's conditions never change once set (the group is bound once), so checking them just
before the join's conditional update leaves no gap; the update's filter carries them too
(`claim_conditions`). The phrase itself is stored only as a digest and never shown to anyone."""
import hashlib
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import (DecryptionFailed, GroupAlreadyBound, GroupDataRequired, GroupDataStale, GroupNotBound,
                            InvalidInput, NoSessionKey, NotInGroup, PassPhraseRequired, TooManyGuesses,
                            WrongPassPhrase)
from lottery.storage import gifts as gift_store
from lottery.storage import guesses, members

log = logging.getLogger(__name__)

MAX_PHRASE = 20  # characters, after normalisation
GUESS_LIMIT = 10
GUESS_WINDOW = timedelta(minutes=10)
LOCKOUT = timedelta(minutes=30)
# wx.getGroupEnterInfo's data is read when the page opens; older than this it is refused.
GROUP_DATA_MAX_AGE = timedelta(hours=1)

# (session_key, iv, encryptedData) -> the decrypted JSON; DecryptionFailed or WrongAppid.
UserDataDecrypter = Callable[[str, str, str], dict]


def normalise_phrase(text: str) -> str:
    """NFKC (full-width letters and digits become half-width: "ＡＢＣ１" is "ABC1"), case folded
    ("Abc" is "abc"), surrounding white space trimmed. Chinese characters are kept as they are."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def check_phrase(text: str) -> str:
    """A sender's pass phrase, normalised; InvalidInput when empty or too long."""
    phrase = normalise_phrase(text)
    if not phrase or len(phrase) > MAX_PHRASE or any(unicodedata.category(c)[0] == "C" for c in phrase):
        raise InvalidInput(f"口令必须是 1 到 {MAX_PHRASE} 个字")
    return phrase


def phrase_digest(order_id: str, phrase: str) -> str:
    """What the gift stores of its (normalised) phrase."""
    return hashlib.sha256(f"gift-lottery/phrase|{order_id}|{phrase}".encode()).hexdigest()


def new_conditions(order_id: str, phrase: str | None, group_only: bool) -> dict | None:
    """The `entry` part of a new gift, or None for a gift anyone may join."""
    if not phrase and not group_only:
        return None
    entry: dict = {}
    if phrase:
        entry["phrase_digest"] = phrase_digest(order_id, check_phrase(phrase))
    if group_only:
        entry.update(group_only=True, opengid=None)
    return entry


def public_conditions(gift: dict) -> dict:
    """What a joiner must bring, as pages see it (never the phrase, never the group)."""
    entry = gift.get("entry") or {}
    return {"pass_phrase": "phrase_digest" in entry, "group_only": bool(entry.get("group_only")),
            "group_bound": bool(entry.get("opengid"))}


@dataclass(frozen=True)
class EntryProof:
    """What a joiner brings: the phrase and wx.getGroupEnterInfo's `iv` and `encryptedData`."""

    pass_phrase: str = ""
    group_iv: str = ""
    group_data: str = ""


class EntryConditions:
    """Checking a join against its gift's conditions, and binding a gift to its group."""

    def __init__(self, db: AsyncDatabase, decrypt: UserDataDecrypter | None) -> None:
        self.db = db
        self.decrypt = decrypt  # wechat/userdata.py, with this mini-program's appid

    async def admit(self, gift: dict, member_id: str, proof: EntryProof) -> dict:
        """The conditions this join meets, as filter conditions for the join's conditional
        update (empty for a gift without any); the condition's error otherwise."""
        entry = gift.get("entry")
        if not entry:
            return {}
        conditions: dict = {}
        if entry.get("group_only"):
            if not entry.get("opengid"):
                raise GroupNotBound()
            opengid = await self.opengid(member_id, proof)
            if opengid != entry["opengid"]:
                log.warning("gift %s: member %s is not in its group", gift["_id"], member_id)
                raise NotInGroup()
            conditions["entry.opengid"] = opengid
        if "phrase_digest" in entry:
            await self.guess(gift, member_id, proof.pass_phrase)
            conditions["entry.phrase_digest"] = entry["phrase_digest"]
        return conditions

    async def guess(self, gift: dict, member_id: str, phrase: str) -> None:
        """Compare a pass phrase under the guessing limit (a ticket first, then the comparison)."""
        if not normalise_phrase(phrase or ""):
            raise PassPhraseRequired()
        now = clock.utcnow()
        if not await guesses.take_ticket(self.db, member_id, now, now + GUESS_WINDOW, GUESS_LIMIT):
            raise TooManyGuesses()
        if phrase_digest(gift["_id"], normalise_phrase(phrase)) == gift["entry"]["phrase_digest"]:
            await guesses.give_back(self.db, member_id)
            return
        if await guesses.lock_if_over(self.db, member_id, now, GUESS_LIMIT, now + LOCKOUT):
            log.warning("member %s: %d wrong pass phrases, refused for %s", member_id, GUESS_LIMIT, LOCKOUT)
        raise WrongPassPhrase()

    async def opengid(self, member_id: str, proof: EntryProof) -> str:
        """The group this member opened the gift from: wx.getGroupEnterInfo's data decrypted
        with their session key, its watermark this mini-program's and recent."""
        if not proof.group_iv or not proof.group_data:
            raise GroupDataRequired()
        member = await members.get(self.db, member_id)
        if member is None or not member.get("session_key") or self.decrypt is None:
            raise NoSessionKey()
        try:
            data = self.decrypt(member["session_key"], proof.group_iv, proof.group_data)
        except InvalidInput as exc:
            log.warning("group data of %s refused: %s", member_id, exc.code)
            raise
        stamp = data["watermark"].get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise DecryptionFailed()
        age = clock.utcnow() - datetime.fromtimestamp(stamp, timezone.utc)
        if age > GROUP_DATA_MAX_AGE or age < -timedelta(minutes=5):
            raise GroupDataStale()
        opengid = data.get("opengid")
        if not isinstance(opengid, str) or not opengid:
            raise NotInGroup()  # opened from a one-to-one chat (open_single_roomid), not a group
        return opengid

    async def bind_group(self, order_id: str, member_id: str, proof: EntryProof) -> None:
        """The sender, opening their shared gift in the group, binds it to that group (once)."""
        opengid = await self.opengid(member_id, proof)
        if await gift_store.bind_group(self.db, order_id, member_id, opengid, clock.utcnow()):
            log.info("gift %s bound to its group", order_id)
            return
        gift = await gift_store.get(self.db, order_id)
        entry = (gift or {}).get("entry") or {}
        if entry.get("opengid") == opengid:
            return  # bound to this group already
        if entry.get("opengid"):
            raise GroupAlreadyBound()
        raise InvalidInput("只有发起人可以把仅限群成员参与的礼物绑定到群")
