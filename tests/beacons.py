"""The local beacon stand-in (fakes/beacon.py) every test's draws use: one per test process,
started before anything draws; its relays and chain reach in-process services through
`beacon()` and server processes through BEACON_RELAYS/BEACON_CHAIN in the environment they
inherit, as an operator would set them."""
import os
import tempfile

from config import Config
from fakes.beacon import FakeBeacon
from lottery import drand
from lottery.beacon import Beacon
from services import beacon_of

# Short rounds: a draw waits for the first round after its freeze, so existing draw tests keep
# their pace.
TEST_PERIOD = 0.25


def start_fake() -> FakeBeacon:
    """Start the stand-in and point this process's environment at it."""
    fake = FakeBeacon(period=TEST_PERIOD).start()
    with tempfile.NamedTemporaryFile("w", prefix="beacon-chain-", suffix=".json", delete=False) as handle:
        handle.write(fake.chain_json())
    os.environ["BEACON_RELAYS"] = ",".join(fake.relay_urls)
    os.environ["BEACON_CHAIN"] = handle.name
    return fake


def settings() -> dict[str, str]:
    """The Config fields that name the stand-in (for configurations built in-process)."""
    return {"beacon_relays": os.environ["BEACON_RELAYS"], "beacon_chain": os.environ["BEACON_CHAIN"]}


def beacon(**config) -> Beacon:
    """A Beacon over the stand-in, as services.py builds it (`config`: more Config fields)."""
    return beacon_of(Config(**settings(), **config))


def chain() -> drand.Chain:
    """The stand-in's chain, which proofs drawn in tests name instead of quicknet."""
    return Config(**settings()).beacon_chain_params()
