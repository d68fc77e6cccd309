"""The local beacon stand-in (fakes/beacon.py) every test's draws use, and the receipt key that
signs their joins: one of each per test process, made before anything joins or draws; they reach
in-process services through `beacon()`/`receipt_key()` and server processes through
BEACON_RELAYS, BEACON_CHAIN and RECEIPT_KEY_FILE in the environment they inherit, as an operator
would set them."""
import os
import tempfile

from config import Config
from fakes.beacon import FakeBeacon
from lottery import drand
from lottery.beacon import Beacon
from lottery.receipts import ReceiptKey
from services import beacon_of

# Short rounds: a draw waits for the first round after its freeze, so existing draw tests keep
# their pace.
TEST_PERIOD = 0.25


def start_fake(period: float = TEST_PERIOD) -> FakeBeacon:
    """Start the stand-in (a round every `period` seconds) and point this process's environment at it."""
    fake = FakeBeacon(period=period).start()
    with tempfile.NamedTemporaryFile("w", prefix="beacon-chain-", suffix=".json", delete=False) as handle:
        handle.write(fake.chain_json())
    os.environ["BEACON_RELAYS"] = ",".join(fake.relay_urls)
    os.environ["BEACON_CHAIN"] = handle.name
    return fake


def settings() -> dict[str, str]:
    """The Config fields that name the stand-in (for configurations built in-process)."""
    return {"beacon_relays": os.environ["BEACON_RELAYS"], "beacon_chain": os.environ["BEACON_CHAIN"],
            "receipt_key_file": os.environ["RECEIPT_KEY_FILE"]}


def beacon(**config) -> Beacon:
    """A Beacon over the stand-in, as services.py builds it (`config`: more Config fields)."""
    return beacon_of(Config(**settings(), **config))


def chain() -> drand.Chain:
    """The stand-in's chain, which proofs drawn in tests name instead of quicknet."""
    return Config(**settings()).beacon_chain_params()


def start_receipt_key() -> None:
    """A receipt signing key for the test process, named in RECEIPT_KEY_FILE as an operator
    would (server processes inherit it)."""
    directory = tempfile.mkdtemp(prefix="receipt-key-")
    os.environ["RECEIPT_KEY_FILE"] = os.path.join(directory, "receipt-key.pem")
    ReceiptKey.load(os.environ["RECEIPT_KEY_FILE"], create=True)


def receipt_key() -> ReceiptKey:
    return ReceiptKey.load(os.environ["RECEIPT_KEY_FILE"])
