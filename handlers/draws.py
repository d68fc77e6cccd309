"""Opening a gift early, and its fairness proof."""
from lottery import validate
from lottery.draw import Draws
from lottery.gifts import public_view

from handlers.base import BaseHandler


class DrawHandler(BaseHandler):
    @property
    def draws(self) -> Draws:
        return self.settings["draws"]


class OpenHandler(DrawHandler):
    async def post(self, order_id: str) -> None:
        """The sender opens their full or timed gift now -> the gift after the draw."""
        validate.check_identifier(order_id)
        member_id = await self.current_member()
        await self.draws.open_early(order_id, member_id)
        gift, me = await self.gifts.look(order_id, member_id)
        self.reply({"gift": public_view(gift), "me": me})


class ProofHandler(DrawHandler):
    async def get(self, order_id: str) -> None:
        """The public proof: commitment, seed, participants (pseudonyms), items, winners."""
        validate.check_identifier(order_id)
        self.reply(await self.draws.proof(order_id))


default_handlers = [
    (r"/api/v1/gifts/([^/]+)/open", OpenHandler),
    (r"/api/v1/gifts/([^/]+)/proof", ProofHandler),
]
