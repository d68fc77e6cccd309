"""The people of a gift as the pages show them: the winners (public, names masked) and the
participant list (for the gift's sender only)."""
from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock
from lottery.errors import Forbidden
from lottery.gifts import Gifts, drawn_winners, item_view, won_item_index
from lottery.storage import joins, members

DEFAULT_NAME = "微信用户"
MAX_WINNERS = 1000  # a gift has at most 1000 items
MAX_LISTED = 100


def mask_name(name: str) -> str:
    """Mask a nickname the way lottery mini-programs do: 小明 -> 小*, 王小明 -> 王*明,
    Alexander -> A***r. The first character stays, so an avatar placeholder can use it."""
    name = (name or DEFAULT_NAME).strip() or DEFAULT_NAME
    if len(name) == 1:
        return name + "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, 3) + name[-1]


def _person(profile: dict | None, masked: bool) -> dict:
    name = (profile or {}).get("nickname") or DEFAULT_NAME
    return {"name": mask_name(name) if masked else name,
            "avatar": (profile or {}).get("avatar_url") or ""}


def _outcome(gift: dict, join: dict, winners: dict[str, int]) -> str | None:
    if gift["status"] != "finished" and gift["method"] != "direct":
        return None
    return "lost" if won_item_index(gift, join, join["member_id"], winners) is None else "won"


class Roster:
    """Read-only lists of a gift's people."""

    def __init__(self, db: AsyncDatabase, gifts: Gifts) -> None:
        self.db = db
        self.gifts = gifts

    async def winners(self, order_id: str) -> dict:
        """Who won what, names masked. Public: a direct gift lists its recipients so far, the
        others list nobody until the draw has finished."""
        gift = await self.gifts.get(order_id)
        if gift["method"] != "direct" and gift["status"] != "finished":
            return {"order_id": order_id, "method": gift["method"], "status": gift["status"], "winners": []}
        if gift["method"] == "direct":
            won = [(j["member_id"], j["item_index"])
                   for j in await joins.direct_recipients(self.db, order_id, MAX_WINNERS)]
        else:
            won = list(drawn_winners(gift).items())
        people = await members.profiles(self.db, [member_id for member_id, _ in won])
        return {
            "order_id": order_id,
            "method": gift["method"],
            "status": gift["status"],
            "participant_count": gift["joined_count"],
            "winners": [{**_person(people.get(member_id), masked=True),
                         "item": item_view(gift["items"][index])}
                        for member_id, index in won],
        }

    async def participants(self, order_id: str, member_id: str) -> dict:
        """The sender's view of who joined (newest first, at most MAX_LISTED), unmasked: the
        sender shared the gift with these friends."""
        gift = await self.gifts.get(order_id)
        if gift["sender_id"] != member_id:
            raise Forbidden("只有发起人可以查看参与名单")
        latest = await joins.latest(self.db, order_id, MAX_LISTED)
        people = await members.profiles(self.db, [j["member_id"] for j in latest])
        winners = drawn_winners(gift)
        return {
            "order_id": order_id,
            "joined_count": gift["joined_count"],
            "participants": [{**_person(people.get(j["member_id"]), masked=False),
                              "joined_at": clock.iso(j["joined_at"]),
                              "outcome": _outcome(gift, j, winners)}
                             for j in latest],
        }
