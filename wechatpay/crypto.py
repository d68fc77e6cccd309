"""WeChat Pay API v3 cryptography, with `cryptography` only: the request signature (the
`Authorization` header), the reply and notify signatures, and AEAD_AES_256_GCM resources.

It follows wechatpayv3's `utils.py` (SHA256withRSA, PKCS#1 v1.5, base64; AES-256-GCM with the
APIv3 key) and adds what that library leaves out: a refusal of timestamps more than five minutes
off, keys looked up by serial whether the serial is a public-key id (`PUB_KEY_ID_...`) or a
platform certificate's hexadecimal serial (both at once while a merchant migrates), and errors
that say which check failed. Signatures are computed and checked over the raw bytes, never over
a re-encoded body. Nothing here logs, and no error carries key material."""
import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
TIMESTAMP_WINDOW = 300  # seconds either way, as WeChat Pay's own SDKs allow

PublicKeys = Mapping[str, rsa.RSAPublicKey]


class VerificationError(Exception):
    """A signed message (a reply or a notify) that must not be trusted. `reason` is a stable
    short code for logs and answers."""

    reason = "unverified"


class MalformedMessage(VerificationError):
    """Signature headers or the notify body are missing or not in WeChat Pay's format."""

    reason = "malformed"


class UnknownSerial(VerificationError):
    """`Wechatpay-Serial` names no key we hold (neither a public-key id nor a certificate)."""

    reason = "unknown_serial"


class StaleTimestamp(VerificationError):
    """`Wechatpay-Timestamp` is more than five minutes away from our clock (a replay)."""

    reason = "stale_timestamp"


class BadSignature(VerificationError):
    """The signature does not verify with the key its serial names (WeChat Pay sends such
    probes on purpose, `WECHATPAY/SIGNTEST/...`, to check that merchants verify)."""

    reason = "bad_signature"


class BadCiphertext(VerificationError):
    """The encrypted resource does not decrypt with the APIv3 key (tampered, or another key)."""

    reason = "bad_ciphertext"


def new_nonce(length: int = 32) -> str:
    """A random string of letters and digits, as WeChat Pay's nonces are."""
    return secrets.token_hex(length // 2 + 1)[:length].upper()


def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of `message`, base64."""
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def signature_valid(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether `signature` (base64) is SHA256withRSA of `message` under `public_key`."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a request signature covers: method, the URL's path and query as sent, timestamp,
    nonce and body, each ending in a newline (the body line is empty for a GET)."""
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What a reply or notify signature covers: `timestamp\\nnonce\\nbody\\n` (raw body)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(mchid: str, serial: str, private_key: rsa.RSAPrivateKey, method: str, url: str,
                  body: bytes, timestamp: int | None = None, nonce: str | None = None) -> str:
    """The `Authorization` header of one request, signed with the merchant API key."""
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    signature = sign(private_key, request_message(method, url, timestamp_text, nonce, body))
    return (f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp_text}",serial_no="{serial}"')


_AUTH_FIELD = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


def parse_authorization(header: str) -> dict[str, str]:
    """The fields of an `Authorization` header; MalformedMessage if it is not WeChat Pay's."""
    schema, _, rest = header.strip().partition(" ")
    if schema != SCHEMA:
        raise MalformedMessage(f"authorization schema is not {SCHEMA}")
    fields = {}
    for part in rest.split(","):
        match = _AUTH_FIELD.fullmatch(part)
        if not match:
            raise MalformedMessage("authorization is not key=\"value\" pairs")
        fields[match.group(1)] = match.group(2)
    missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - fields.keys()
    if missing:
        raise MalformedMessage(f"authorization lacks {', '.join(sorted(missing))}")
    return fields


def serial_key(serial: str) -> str:
    """One spelling per key: a public-key id as it is, a certificate serial as upper-case hex
    without leading zeros (WeChat Pay sends 40 hex digits; certificates store an integer)."""
    serial = serial.strip()
    if serial.startswith(PUBLIC_KEY_ID_PREFIX):
        return serial
    try:
        return format(int(serial, 16), "X")
    except ValueError:
        return serial


def certificate_serial(certificate: x509.Certificate) -> str:
    """A certificate's serial as WeChat Pay writes it: upper-case hex."""
    return format(certificate.serial_number, "X")


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM; ValueError without the key's content otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (`-----BEGIN PUBLIC KEY-----`)."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def load_certificate(pem: bytes) -> tuple[str, rsa.RSAPublicKey]:
    """A platform certificate's serial and public key."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ValueError("not a PEM certificate") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA certificate")
    return certificate_serial(certificate), key


def public_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """The PEM of a public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def header(headers: Mapping[str, str], name: str) -> str:
    """A header by name whatever its case (Tornado's headers are case-insensitive, dicts not)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""


class Verifier:
    """Checks WeChat Pay's signature on a reply or a notify with the key its `Wechatpay-Serial`
    names, and that its timestamp is within five minutes of ours."""

    def __init__(self, keys: PublicKeys, window: int = TIMESTAMP_WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = {serial_key(serial): key for serial, key in keys.items()}
        self.window = window
        self.clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Returns the serial that signed; raises a VerificationError naming what failed."""
        serial = header(headers, "Wechatpay-Serial")
        signature = header(headers, "Wechatpay-Signature")
        timestamp = header(headers, "Wechatpay-Timestamp")
        nonce = header(headers, "Wechatpay-Nonce")
        if not (serial and signature and timestamp and nonce):
            raise MalformedMessage("not signed: a Wechatpay-Serial/Signature/Timestamp/Nonce header is missing")
        kind = header(headers, "Wechatpay-Signature-Type")
        if kind and kind != SCHEMA:
            raise MalformedMessage(f"signature type {kind[:40]!r} is not {SCHEMA}")
        key = self.keys.get(serial_key(serial))
        if key is None:
            raise UnknownSerial(f"no WeChat Pay key with serial {serial[:64]!r}")
        try:
            moment = int(timestamp)
        except ValueError:
            raise MalformedMessage("Wechatpay-Timestamp is not a number") from None
        off = moment - self.clock()
        if abs(off) > self.window:
            raise StaleTimestamp(f"timestamp {off:+.0f} s from now (at most {self.window} s allowed)")
        if not signature_valid(key, signed_message(timestamp, nonce, body), signature):
            raise BadSignature(f"signature does not verify with key {serial[:64]!r}")
        return serial


def encrypt_resource(apiv3_key: str, plaintext: bytes, associated_data: str, nonce: str) -> str:
    """AEAD_AES_256_GCM with the APIv3 key, base64 (ciphertext and tag), as in notifies."""
    return base64.b64encode(AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), plaintext, associated_data.encode())).decode()


def decrypt_resource(apiv3_key: str, resource: Mapping[str, object]) -> dict:
    """The JSON object inside a notify's `resource`; BadCiphertext or MalformedMessage."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise MalformedMessage("resource algorithm is not AEAD_AES_256_GCM")
    ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
    associated_data = resource.get("associated_data") or ""
    if not (isinstance(ciphertext, str) and isinstance(nonce, str) and nonce
            and isinstance(associated_data, str)):
        raise MalformedMessage("resource lacks ciphertext or nonce")
    try:
        data = base64.b64decode(ciphertext, validate=True)
        plaintext = AESGCM(apiv3_key.encode()).decrypt(nonce.encode(), data, associated_data.encode())
    except (binascii.Error, ValueError, InvalidTag):
        raise BadCiphertext("resource does not decrypt with the APIv3 key") from None
    try:
        decoded = json.loads(plaintext)
    except ValueError:
        raise MalformedMessage("decrypted resource is not JSON") from None
    if not isinstance(decoded, dict):
        raise MalformedMessage("decrypted resource is not an object")
    return decoded
