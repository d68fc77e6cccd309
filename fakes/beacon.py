"""A local stand-in for drand's HTTP relays: a chain of its own (its own BLS key, a short period)
served with drand's API and its errors, for tests and --dev/--demo.

- `GET <relay>/{chain_hash}/info`: the chain's parameters, as drand answers them.
- `GET <relay>/{chain_hash}/public/{round}`: `{round, randomness, signature}`, signed with the
  stand-in's key (BLS on G1, RFC 9380 hash-to-curve, drand's DST) once the round is out; a round
  not out yet answers 425 Too Early (the next one) or 404 (further ahead), as drand's relays do.
  An unknown chain hash answers 404.

It serves several relays at once, one a path prefix (`relay_url(i)`), each with its own fault:
`down` (503), `slow` (answers after `slow_seconds`), `bad_signature` (the signature of another
round), or None. Every request is counted per relay in `requests`."""
import asyncio
import hashlib
import json
import time
from collections import Counter

from tornado import web

from fakes.served import ServedFake

from lottery import drand

FAULTS = (None, "down", "slow", "bad_signature")


class FakeBeacon(ServedFake):
    """The stand-in chain and its relays."""

    name = "fake-beacon"

    def __init__(self, period: float = 0.3, relays: int = 3, key_seed: str = "gift-lottery fake beacon",
                 genesis: float | None = None) -> None:
        from py_arkworks_bls12381 import G2Point, Scalar

        order = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001  # BLS12-381 group order
        self.secret = int.from_bytes(hashlib.sha256(key_seed.encode()).digest(), "big") % order
        self._scalar = Scalar(self.secret)
        public_key = (G2Point() * self._scalar).to_compressed_bytes().hex()
        genesis = float(genesis if genesis is not None else round(time.time() - 10 * period, 3))
        chain_hash = hashlib.sha256(f"{public_key}|{genesis}|{period}".encode()).hexdigest()
        self.chain = drand.Chain(chain_hash, public_key, genesis, period)
        self.faults: list[str | None] = [None] * relays
        self.slow_seconds = 5.0
        self.requests: Counter = Counter()
        super().__init__()

    # Driving it

    def relay_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.port}/relay{index}"

    @property
    def relay_urls(self) -> list[str]:
        return [self.relay_url(i) for i in range(len(self.faults))]

    def chain_json(self) -> str:
        """The chain's parameters as the server's `beacon_chain` file holds them."""
        return json.dumps(self.chain.as_dict())

    def set_fault(self, index: int, fault: str | None) -> None:
        if fault not in FAULTS:
            raise ValueError(fault)
        self.faults[index] = fault

    def sign(self, round_: int) -> str:
        """The chain's signature of a round (hex, compressed G1)."""
        from py_arkworks_bls12381 import G1Point

        return (G1Point.hash_to_curve(drand.message(round_), drand.DST) * self._scalar).to_compressed_bytes().hex()

    def latest_round(self) -> int:
        return self.chain.first_round_after(time.time()) - 1

    # Serving

    def routes(self) -> list:
        return [(r"/relay(\d+)/([0-9a-f]+)/info", _InfoHandler, {"fake": self}),
                (r"/relay(\d+)/([0-9a-f]+)/public/(\d+)", _RoundHandler, {"fake": self}),
                (r"/relay(\d+)/.*", _NotFoundHandler, {"fake": self})]


class _RelayHandler(web.RequestHandler):
    def initialize(self, fake: FakeBeacon) -> None:
        self.fake = fake

    async def relay(self, index: str, chain_hash: str) -> bool:
        """Apply this relay's fault; False when the answer is already given."""
        number = int(index)
        if number >= len(self.fake.faults):
            self.send_error(404)
            return False
        self.fake.requests[number] += 1
        fault = self.fake.faults[number]
        if fault == "down":
            self.send_error(503)
            return False
        if fault == "slow":
            await asyncio.sleep(self.fake.slow_seconds)
        if chain_hash != self.fake.chain.chain_hash:
            self.send_error(404)
            return False
        return True

    def write_error(self, status_code: int, **kwargs) -> None:
        self.finish({"error": self._reason})


class _InfoHandler(_RelayHandler):
    async def get(self, index: str, chain_hash: str) -> None:
        if await self.relay(index, chain_hash):
            chain = self.fake.chain
            self.finish({"public_key": chain.public_key, "period": chain.period, "genesis_time": chain.genesis,
                         "hash": chain.chain_hash, "schemeID": chain.scheme, "metadata": {"beaconID": "fake"}})


class _RoundHandler(_RelayHandler):
    async def get(self, index: str, chain_hash: str, round_text: str) -> None:
        if not await self.relay(index, chain_hash):
            return
        round_ = int(round_text)
        latest = self.fake.latest_round()
        if round_ == 0 or round_ > latest + 1:
            self.send_error(404)
            return
        if round_ == latest + 1:
            self.send_error(425)  # drand: the next round, not out yet
            return
        signed = round_ + 1 if self.fake.faults[int(index)] == "bad_signature" else round_
        signature = self.fake.sign(signed)
        self.finish({"round": round_, "randomness": drand.randomness(signature), "signature": signature})


class _NotFoundHandler(_RelayHandler):
    def get(self, *_parts: str) -> None:
        self.send_error(404)
