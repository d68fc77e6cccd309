"""Opening a gift early, and its fairness proof."""
from handlers.base import ID_GROUP, BaseHandler
from lottery.gifts import public_view


class OpenHandler(BaseHandler):
    async def post(self, order_id: str) -> None:
        """The sender opens their full or timed gift now -> the gift after the draw."""
        member_id = self.member_id()
        await self.draws.open_early(order_id, member_id)
        gift, me = await self.gifts.look(order_id, member_id)
        self.reply({"gift": public_view(gift), "me": me})


class ProofHandler(BaseHandler):
    async def get(self, order_id: str) -> None:
        """The public proof: commitment, seed, participants (pseudonyms), items, winners."""
        self.reply(await self.draws.proof(order_id))


class BeaconHandler(BaseHandler):
    async def get(self) -> None:
        """The drand chain this server's draws use: quicknet, or the local stand-in's (--dev)."""
        self.reply(self.draws.beacon.chain.as_dict())


class ReceiptKeyHandler(BaseHandler):
    async def get(self) -> None:
        """The public key that checks join receipts (Ed25519)."""
        self.reply(self.draws.receipt_key.public_view())


default_handlers = [
    (r"/api/v1/receipt-key", ReceiptKeyHandler),
    (r"/api/v1/beacon", BeaconHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/open", OpenHandler),
    (rf"/api/v1/gifts/{ID_GROUP}/proof", ProofHandler),
]
