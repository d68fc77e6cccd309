"""WeChat Pay API v3 for mini-program (JSAPI) payments and refunds, with Tornado's async HTTP
client on the event loop (no threads, no blocking the loop).

Every request carries the merchant's `Authorization` signature; every reply is verified with
WeChat Pay's key (its public key, `PUB_KEY_ID_...`, or a platform certificate) before anything in
it is used, and so is every notify (`verify_notify`). Errors are `WeChatPayError`, which says
whether trying the same request again may succeed. The APIv3 key and the merchant private key
never reach a log, an error message or a repr.

The crypto is in `wechatpay/crypto.py`; the local fake of WeChat Pay in
`fakes/wechatpay.py`."""
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse


from wechatpay import crypto
from wechatpay.crypto import BadCiphertext, BadSignature, MalformedMessage, StaleTimestamp, UnknownSerial, VerificationError
from lottery.validate import is_loopback
from lottery.errors import ConfigError, PaymentFailure

__all__ = ["WeChatPayConfig", "WeChatPayClient", "WeChatPayError", "ConfigError", "VerificationError",
           "MalformedMessage", "UnknownSerial", "StaleTimestamp", "BadSignature", "BadCiphertext",
           "DEFAULT_API_BASE", "RETRYABLE_CODES"]

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.mch.weixin.qq.com"
# Codes WeChat Pay documents as "try again later with the same parameters".
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED"})
# Our own codes, for replies we could not trust or read (WeChat's codes are upper-case words too,
# so ours carry a prefix that none of theirs has).
REPLY_UNVERIFIED = "LOCAL_REPLY_UNVERIFIED"
REPLY_UNREADABLE = "LOCAL_REPLY_UNREADABLE"


class WeChatPayError(PaymentFailure):
    """A WeChat Pay call that did not succeed.

    `status` is the HTTP status (None: no answer at all), `code` and `message` WeChat Pay's own
    (`ORDERPAID`, `SYSTEM_ERROR`, ...; `LOCAL_...` for replies we refused), `retryable` whether
    the same request may succeed later: network failures, 5xx, `SYSTEM_ERROR` and
    `FREQUENCY_LIMITED`. A network failure after sending means the request may have been applied
    (`out_trade_no` and `out_refund_no` make a repeat safe)."""

    def __init__(self, status: int | None, code: str | None, message: str, retryable: bool,
                 request_id: str | None = None) -> None:
        head = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"{head} {code}: {message}" if code else f"{head}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.request_id = request_id  # WeChat Pay's Request-ID, for its support


def checked_url(setting: str, url: str, callback: bool) -> str:
    """An https URL (plain http only on a loopback host, for development and tests); a callback
    URL may carry no query string (WeChat Pay refuses one)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{setting}: not an http(s) URL: {url!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{setting}: must be https (plain http only for a loopback host): {url!r}")
    if callback and (parts.query or parts.fragment):
        raise ConfigError(f"{setting}: a notify URL may not carry a query string: {url!r}")
    return url


@dataclass(frozen=True)
class WeChatPayConfig:
    """One merchant's WeChat Pay v3 credentials and URLs.

    `verifier_keys` maps each WeChat Pay key we trust by its serial: the public key under its
    `PUB_KEY_ID_...` (public-key mode) and/or platform certificates' keys under their serials;
    while WeChat Pay migrates a merchant it signs notifies with either. `public_key_id`, when
    set, is sent as `Wechatpay-Serial` so that replies are signed with the public key."""

    mchid: str
    appid: str
    apiv3_key: str = field(repr=False)
    private_key: rsa.RSAPrivateKey = field(repr=False)
    cert_serial: str
    verifier_keys: Mapping[str, rsa.RSAPublicKey] = field(repr=False)
    notify_url: str
    public_key_id: str | None = None
    api_base: str = DEFAULT_API_BASE
    refund_notify_url: str | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9]{1,32}", self.mchid or ""):
            raise ConfigError("WECHATPAY_MCHID: the merchant number (digits) is missing or malformed")
        if not self.appid:
            raise ConfigError("WECHAT_APPID: the mini-program appid is needed for payments")
        if len((self.apiv3_key or "").encode()) != 32:
            # The length only: the key itself is never shown.
            raise ConfigError(f"WECHATPAY_APIV3_KEY: must be 32 bytes "
                              f"(it has {len((self.apiv3_key or '').encode())})")
        if not re.fullmatch(r"[0-9A-Fa-f]{1,64}", self.cert_serial or ""):
            raise ConfigError("WECHATPAY_CERT_SERIAL: the merchant certificate's serial (hex) is missing or malformed")
        if not self.verifier_keys:
            raise ConfigError("no WeChat Pay key to verify with: set WECHATPAY_PUBLIC_KEY_FILE and "
                              "WECHATPAY_PUBLIC_KEY_ID, or WECHATPAY_PLATFORM_CERT_FILES")
        if self.public_key_id is not None:
            if not self.public_key_id.startswith(crypto.PUBLIC_KEY_ID_PREFIX):
                raise ConfigError(f"WECHATPAY_PUBLIC_KEY_ID: must start with {crypto.PUBLIC_KEY_ID_PREFIX}")
            if self.public_key_id not in self.verifier_keys:
                raise ConfigError("WECHATPAY_PUBLIC_KEY_ID: no public key given for it")
        api_base = checked_url("WECHATPAY_API_BASE", self.api_base, callback=False)
        object.__setattr__(self, "api_base", api_base.rstrip("/"))
        checked_url("WECHATPAY_NOTIFY_URL", self.notify_url or "", callback=True)
        if self.refund_notify_url is not None:
            checked_url("WECHATPAY_REFUND_NOTIFY_URL", self.refund_notify_url, callback=True)

    @classmethod
    def load(cls, *, mchid: str, appid: str, apiv3_key: str, private_key_file: str, cert_serial: str,
             notify_url: str, public_key_file: str = "", public_key_id: str = "",
             platform_cert_files: str = "", api_base: str = DEFAULT_API_BASE,
             refund_notify_url: str = "") -> "WeChatPayConfig":
        """From setting values as options and the environment give them (strings; empty means
        unset): keys are read from their PEM files, certificates' serials from the certificates.
        `platform_cert_files` is a comma-separated list. ConfigError names what is wrong."""
        if not private_key_file:
            raise ConfigError("WECHATPAY_PRIVATE_KEY_FILE: the merchant API key (apiclient_key.pem) is needed")
        private_key = loaded("WECHATPAY_PRIVATE_KEY_FILE", private_key_file, crypto.load_private_key)
        keys: dict[str, rsa.RSAPublicKey] = {}
        public_key_file, public_key_id = public_key_file.strip(), public_key_id.strip()
        if bool(public_key_file) != bool(public_key_id):
            raise ConfigError("WECHATPAY_PUBLIC_KEY_FILE and WECHATPAY_PUBLIC_KEY_ID go together")
        if public_key_file:
            keys[public_key_id] = loaded("WECHATPAY_PUBLIC_KEY_FILE", public_key_file, crypto.load_public_key)
        for path in filter(None, (p.strip() for p in platform_cert_files.split(","))):
            serial, key = loaded("WECHATPAY_PLATFORM_CERT_FILES", path, crypto.load_certificate)
            keys[serial] = key
        return cls(mchid=mchid.strip(), appid=appid.strip(), apiv3_key=apiv3_key, private_key=private_key,
                   cert_serial=cert_serial.strip(), verifier_keys=keys, notify_url=notify_url.strip(),
                   public_key_id=public_key_id or None, api_base=api_base.strip() or DEFAULT_API_BASE,
                   refund_notify_url=refund_notify_url.strip() or None)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "WeChatPayConfig":
        """`load` from WECHATPAY_* and WECHAT_APPID."""
        values = {name: environ.get(variable, "") for name, variable in ENVIRONMENT.items()}
        if not values["api_base"]:
            values["api_base"] = DEFAULT_API_BASE
        return cls.load(**values)


# Each `load` argument and the environment variable that sets it.
ENVIRONMENT = {
    "mchid": "WECHATPAY_MCHID", "appid": "WECHAT_APPID", "apiv3_key": "WECHATPAY_APIV3_KEY",
    "private_key_file": "WECHATPAY_PRIVATE_KEY_FILE", "cert_serial": "WECHATPAY_CERT_SERIAL",
    "public_key_file": "WECHATPAY_PUBLIC_KEY_FILE", "public_key_id": "WECHATPAY_PUBLIC_KEY_ID",
    "platform_cert_files": "WECHATPAY_PLATFORM_CERT_FILES", "api_base": "WECHATPAY_API_BASE",
    "notify_url": "WECHATPAY_NOTIFY_URL", "refund_notify_url": "WECHATPAY_REFUND_NOTIFY_URL",
}


def read_pem(setting: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path!r} ({exc.strerror})") from None


def loaded(setting: str, path: str, parse: Callable[[bytes], object]):
    """`parse` of the PEM file at `path`; ConfigError naming the setting and path (never the
    file's content)."""
    try:
        return parse(read_pem(setting, path))
    except ValueError as exc:
        raise ConfigError(f"{setting}: {path!r} is {exc}") from None


class WeChatPayClient:
    """WeChat Pay v3 calls for one merchant and one mini-program."""

    def __init__(self, config: WeChatPayConfig, timeout: float = 10.0, http: AsyncHTTPClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.timeout = timeout
        self.http = http or AsyncHTTPClient()
        self.clock = clock
        self.verifier = crypto.Verifier(config.verifier_keys, clock=clock)

    # -- payments ---------------------------------------------------------------------------

    async def jsapi_prepay(self, out_trade_no: str, description: str, total_fen: int, openid: str,
                           time_expire: datetime) -> str:
        """`POST /v3/pay/transactions/jsapi`: a prepay_id (valid two hours) for this payer.
        Calling again with the same parameters answers the same prepay_id."""
        if time_expire.tzinfo is None:
            raise ValueError("time_expire must carry its time zone (RFC 3339)")
        answer = await self.call("POST", "/v3/pay/transactions/jsapi", body={
            "appid": self.config.appid, "mchid": self.config.mchid, "description": description,
            "out_trade_no": out_trade_no, "time_expire": time_expire.isoformat(timespec="seconds"),
            "notify_url": self.config.notify_url, "amount": {"total": total_fen, "currency": "CNY"},
            "payer": {"openid": openid}})
        prepay_id = answer.get("prepay_id") if isinstance(answer, dict) else None
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WeChatPayError(200, REPLY_UNREADABLE, "jsapi answered without prepay_id", retryable=False)
        return prepay_id

    def request_payment_params(self, prepay_id: str) -> dict[str, str]:
        """The exact parameters of the mini-program's `wx.requestPayment` (besides its callbacks):
        paySign is SHA256withRSA with the merchant key over `appId\\ntimeStamp\\nnonceStr\\npackage\\n`."""
        params = {"appId": self.config.appid, "timeStamp": str(int(self.clock())),
                  "nonceStr": crypto.new_nonce(), "package": f"prepay_id={prepay_id}", "signType": "RSA"}
        message = "".join(params[k] + "\n" for k in ("appId", "timeStamp", "nonceStr", "package"))
        params["paySign"] = crypto.sign(self.config.private_key, message.encode())
        return params

    async def query_by_out_trade_no(self, out_trade_no: str) -> dict:
        """`GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=`: the transaction
        (`trade_state` SUCCESS, NOTPAY, CLOSED, REFUND, USERPAYING, PAYERROR, ...)."""
        return await self.call("GET", f"/v3/pay/transactions/out-trade-no/{segment(out_trade_no)}",
                               query={"mchid": self.config.mchid})

    async def close(self, out_trade_no: str) -> None:
        """`POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` (204 No Content). Closing
        a paid order fails with ORDERPAID."""
        await self.call("POST", f"/v3/pay/transactions/out-trade-no/{segment(out_trade_no)}/close",
                        body={"mchid": self.config.mchid})

    # -- refunds ----------------------------------------------------------------------------

    async def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int,
                     reason: str) -> dict:
        """`POST /v3/refund/domestic/refunds`: the refund (`status` PROCESSING, SUCCESS, CLOSED or
        ABNORMAL). The same `out_refund_no` never refunds twice: repeat it after any failure."""
        body: dict = {"out_trade_no": out_trade_no, "out_refund_no": out_refund_no, "reason": reason,
                      "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"}}
        if self.config.refund_notify_url:
            body["notify_url"] = self.config.refund_notify_url
        return await self.call("POST", "/v3/refund/domestic/refunds", body=body)

    async def query_refund(self, out_refund_no: str) -> dict:
        """`GET /v3/refund/domestic/refunds/{out_refund_no}`: the refund as `refund` answers it."""
        return await self.call("GET", f"/v3/refund/domestic/refunds/{segment(out_refund_no)}")

    # -- bills ------------------------------------------------------------------------------

    async def trade_bill(self, bill_date: str) -> dict:
        """`GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL`: `{hash_type, hash_value,
        download_url}` of the day's trade bill (payments and refunds). WeChat Pay answers 400
        NO_STATEMENT_EXIST while the bill is not ready (after 10:00 the next day) or when the day
        had no trades."""
        return await self.call("GET", "/v3/bill/tradebill", query={"bill_date": bill_date, "bill_type": "ALL"})

    async def download_bill(self, download_url: str, hash_type: str, hash_value: str) -> bytes:
        """The bill file behind a `trade_bill` answer's `download_url`: a signed GET whose reply
        WeChat Pay does not sign, so the file is trusted only if its hash (SHA1, from the signed
        `trade_bill` answer) matches; WeChatPayError otherwise. The URL must be WeChat Pay's own
        (our base URL): a signed request goes nowhere else."""
        if not download_url.startswith(self.config.api_base + "/"):
            raise WeChatPayError(200, REPLY_UNREADABLE, "download_url is not on WeChat Pay's host", retryable=False)
        if hash_type.upper() != "SHA1":
            raise WeChatPayError(200, REPLY_UNREADABLE, f"unknown bill hash type {hash_type[:16]!r}", retryable=False)
        raw = await self.call("GET", download_url[len(self.config.api_base):], raw=True)
        if not hmac.compare_digest(hashlib.sha1(raw).hexdigest(), hash_value.lower()):
            log.warning("WeChat Pay bill download: its SHA1 does not match the hash WeChat Pay gave")
            raise WeChatPayError(200, REPLY_UNVERIFIED, "bill file does not match its hash", retryable=True)
        return raw

    # -- notifies ---------------------------------------------------------------------------

    def verify_notify(self, headers: Mapping[str, str], raw_body: bytes, expect: str | None = None) -> dict:
        """A notify's decrypted resource (a `transaction` for TRANSACTION.SUCCESS, a `refund` for
        REFUND.*), once its signature, serial and timestamp check out. `expect` names the
        resource's `original_type` the route takes. Raises a VerificationError subclass:
        BadSignature, UnknownSerial, StaleTimestamp, BadCiphertext or MalformedMessage. Checking
        mchid, appid, out_trade_no and the amount against the order is the caller's job."""
        self.verifier.verify(headers, raw_body)
        try:
            notify = json.loads(raw_body)
        except ValueError:
            raise MalformedMessage("notify body is not JSON") from None
        if not isinstance(notify, dict):
            raise MalformedMessage("notify body is not a JSON object")
        resource = notify.get("resource")
        if notify.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict):
            raise MalformedMessage("notify has no encrypted resource")
        if expect is not None and resource.get("original_type") != expect:
            raise MalformedMessage(f"notify carries a {str(resource.get('original_type'))[:32]!r}, not a {expect!r}")
        return crypto.decrypt_resource(self.config.apiv3_key, resource)

    # -- the one HTTP path ------------------------------------------------------------------

    async def call(self, method: str, path: str, query: Mapping[str, str] | None = None,
                   body: dict | None = None, raw: bool = False) -> dict | bytes:
        """One signed request; the verified, decoded reply ({} for 204) or WeChatPayError.
        `raw`: a file download, whose success WeChat Pay does not sign: its bytes, unverified
        (the caller checks them by hash)."""
        url = path + ("?" + urlencode(query) if query else "")
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else b""
        headers = {"Accept": "application/json", "User-Agent": "gift-lottery-wechatpay/1",
                   "Authorization": crypto.authorization(self.config.mchid, self.config.cert_serial,
                                                         self.config.private_key, method, url, payload,
                                                         timestamp=int(self.clock()))}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.config.public_key_id:
            headers["Wechatpay-Serial"] = self.config.public_key_id  # replies signed with the public key
        request = HTTPRequest(self.config.api_base + url, method=method, headers=headers,
                              body=payload if method == "POST" else None,
                              connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except HTTPClientError as exc:  # 599 from some clients: timed out or the stream closed
            raise self.no_answer(method, path, exc.message or type(exc).__name__) from exc
        except (OSError, TimeoutError) as exc:
            raise self.no_answer(method, path, type(exc).__name__) from exc
        if response.code == 599:
            raise self.no_answer(method, path, type(response.error).__name__ if response.error else "no answer")
        if raw and 200 <= response.code < 300:
            return response.body or b""
        return self.reply(method, path, response)

    def no_answer(self, method: str, path: str, why: str) -> WeChatPayError:
        log.warning("WeChat Pay %s %s: no answer (%s)", method, path, why)
        return WeChatPayError(None, None, f"{method} {path}: no answer ({why}); it may have been applied",
                              retryable=True)

    def reply(self, method: str, path: str, response: HTTPResponse) -> dict:
        """Verify, then decode. A 2xx must be signed (an unsigned success is forged); an error
        answer is verified when signed (WeChat Pay does not sign a refused signature's 401)."""
        status, raw = response.code, response.body or b""
        request_id = response.headers.get("Request-ID")
        signed = bool(crypto.header(response.headers, "Wechatpay-Signature"))
        if 200 <= status < 300 or signed:
            try:
                self.verifier.verify(response.headers, raw)
            except VerificationError as exc:
                log.warning("WeChat Pay %s %s: reply refused (%s) request_id=%s", method, path, exc.reason, request_id)
                raise WeChatPayError(status, REPLY_UNVERIFIED, f"{method} {path}: reply not trusted: {exc}",
                                     retryable=False, request_id=request_id) from exc
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = None
        if 200 <= status < 300:
            if not isinstance(answer, dict):
                raise WeChatPayError(status, REPLY_UNREADABLE, f"{method} {path}: reply is not a JSON object",
                                     retryable=False, request_id=request_id)
            return answer
        code = answer.get("code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        code = code if isinstance(code, str) and code else None
        message = str(message)[:200] if message else f"HTTP {status}"
        retryable = status >= 500 or status == 429 or code in RETRYABLE_CODES
        log.warning("WeChat Pay %s %s: HTTP %s %s %s request_id=%s", method, path, status, code, message, request_id)
        raise WeChatPayError(status, code, message, retryable=retryable, request_id=request_id)


def segment(value: str) -> str:
    """A path segment, percent-encoded (the URL signed is the URL sent)."""
    return quote(value, safe="")
