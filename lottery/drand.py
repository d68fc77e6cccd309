"""drand's unchained G1 beacons (scheme `bls-unchained-g1-rfc9380`, the `quicknet` chain): which
round a moment falls in, and whether a round's signature is the chain's.

Round r is out at `genesis + (r - 1) * period`; its message is SHA-256 of r as an 8-byte
big-endian integer; its signature is a BLS12-381 signature on G1 (hash-to-curve RFC 9380,
`BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`) checked against the chain's key on G2; its
randomness is SHA-256 of the signature. The pairing is py-arkworks-bls12381's (a binding of
arkworks): about 4 ms a verification, where pure-Python py-ecc takes about 2 s
(docs/fairness.md has the measurements)."""
import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

SCHEME = "bls-unchained-g1-rfc9380"
DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"


@dataclass(frozen=True)
class Chain:
    """A drand chain's fixed parameters. Pinned, never taken from a relay's answer."""

    chain_hash: str
    public_key: str  # hex, compressed G2
    genesis: float  # unix seconds of round 1
    period: float  # seconds between rounds
    scheme: str = SCHEME

    def round_time(self, round_: int) -> float:
        """When round `round_` is out (unix seconds)."""
        return self.genesis + (round_ - 1) * self.period

    def first_round_after(self, moment: float) -> int:
        """The first round whose time is strictly after `moment`."""
        if moment < self.genesis:
            return 1
        return math.floor((moment - self.genesis) / self.period) + 2

    def as_dict(self) -> dict:
        return {"chain_hash": self.chain_hash, "public_key": self.public_key, "genesis": self.genesis,
                "period": self.period, "scheme": self.scheme}

    @classmethod
    def from_dict(cls, values: dict) -> "Chain":
        chain = cls(str(values["chain_hash"]), str(values["public_key"]), float(values["genesis"]),
                    float(values["period"]), str(values.get("scheme", SCHEME)))
        if chain.scheme != SCHEME or chain.period <= 0 or not is_hex(chain.public_key, 96) \
                or not is_hex(chain.chain_hash, 32):
            raise ValueError(f"not a {SCHEME} chain: {values!r}")
        return chain


# drand's League of Entropy mainnet `quicknet` chain (https://api.drand.sh/<chain_hash>/info).
QUICKNET = Chain(
    chain_hash="52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    public_key="83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1"
               "fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
    genesis=1692803367, period=3)


def is_hex(text: object, length: int) -> bool:
    """`text` is `length` bytes in lowercase hex."""
    return isinstance(text, str) and len(text) == 2 * length and all(c in "0123456789abcdef" for c in text)


def message(round_: int) -> bytes:
    """What the chain signs for round `round_`."""
    return hashlib.sha256(round_.to_bytes(8, "big")).digest()


def randomness(signature_hex: str) -> str:
    """A round's randomness: SHA-256 of its signature (hex)."""
    return hashlib.sha256(bytes.fromhex(signature_hex)).hexdigest()


def verify(chain: Chain, round_: int, signature_hex: str) -> bool:
    """Whether `signature_hex` is the chain's signature of round `round_` (valid rounds are
    remembered: a draw and its proof's readers check the same round again and again)."""
    if not isinstance(round_, int) or isinstance(round_, bool) or not 1 <= round_ < 2**63 \
            or not is_hex(signature_hex, 48):
        return False
    return _verify(chain.public_key, round_, signature_hex)


@lru_cache(maxsize=4096)
def _verify(public_key_hex: str, round_: int, signature_hex: str) -> bool:
    # Imported here: the version-1 verifier (lottery/fairness.py) stays standard-library only.
    from py_arkworks_bls12381 import G1Point, G2Point, GT

    try:
        signature = G1Point.from_compressed_bytes(bytes.fromhex(signature_hex))
        public_key = G2Point.from_compressed_bytes(bytes.fromhex(public_key_hex))
    except Exception:  # not a point of the curve's subgroup (the binding raises its own error types)
        return False
    if signature == G1Point.identity() or not signature.is_in_subgroup():
        return False
    hashed = G1Point.hash_to_curve(message(round_), DST)
    # e(signature, g2) == e(H(m), public key)
    return GT.pairing_check([signature, hashed], [-G2Point(), public_key])
