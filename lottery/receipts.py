"""Join receipts: what the server signs for every accepted join, so a member can prove they were
in a draw and under which number.

A receipt is `{gift, participant, sequence, signature}`: the gift's order id, the member's
pseudonym in it (the name the proof lists), the join's sequence number in that gift (1, 2, 3 ...
in the order joins were accepted), and an Ed25519 signature by the server's receipt key over
`gift-lottery/receipt/v1|<gift>|<participant>|<sequence>`. The public key is published at
GET /api/v1/receipt-key; `verify` needs only `cryptography`."""
import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

LABEL = "gift-lottery/receipt/v1"


def message(gift: str, participant: str, sequence: int) -> bytes:
    return f"{LABEL}|{gift}|{participant}|{sequence}".encode()


@dataclass(frozen=True)
class ReceiptKey:
    """The server's receipt signing key."""

    private: Ed25519PrivateKey

    @classmethod
    def load(cls, path: str, create: bool = False) -> "ReceiptKey":
        """The key in `path` (PEM, PKCS#8); with `create`, a new one is written there first if
        the file is missing (development)."""
        if create and not os.path.exists(path):
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
        with open(path, "rb") as handle:
            private = serialization.load_pem_private_key(handle.read(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(private)

    def public_hex(self) -> str:
        return self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                      serialization.PublicFormat.Raw).hex()

    def public_view(self) -> dict:
        """What GET /api/v1/receipt-key answers."""
        return {"algorithm": "ed25519", "public_key": self.public_hex(), "message": f"{LABEL}|<gift>|<participant>|<sequence>"}

    def sign(self, gift: str, participant: str, sequence: int) -> dict:
        """The receipt of a join."""
        signature = self.private.sign(message(gift, participant, sequence))
        return {"gift": gift, "participant": participant, "sequence": sequence,
                "signature": base64.b64encode(signature).decode()}


def verify(receipt: dict, public_key_hex: str) -> bool:
    """Whether `receipt` was signed by the receipt key whose public half is `public_key_hex`."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(base64.b64decode(receipt["signature"], validate=True),
                   message(str(receipt["gift"]), str(receipt["participant"]), int(receipt["sequence"])))
        return True
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
