"""A local stand-in for WeChat Pay API v3 (api.mch.weixin.qq.com). Development and tests only:
the server's --dev/--demo mode, the tests and the benchmarks use it, which is why it lives in
fakes/ and not in tests/ (and never in the production image). Never point a production server
at it.

It speaks the real protocol over HTTP, on its own thread and event loop (so in-process apps and
server subprocesses alike reach it over a socket):

- Requests must carry a valid `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...` signed with a
  merchant key it trusts (`trust_merchant`), for its merchant number, within five minutes of its
  clock; otherwise 401 SIGN_ERROR, unsigned (as WeChat Pay answers a request it cannot verify).
- Every other reply is signed: with its public key (`public_key_id`, `PUB_KEY_ID_0114...`) when
  the request's `Wechatpay-Serial` names it, else with its platform certificate
  (`certificate_serial`) if it has one; errors are `{"code", "message"}` with a 4xx/5xx status.
- `POST /v3/pay/transactions/jsapi` creates a NOTPAY transaction and answers its prepay_id; the
  same out_trade_no with the same parameters answers the same prepay_id, with others 403
  OUT_TRADE_NO_USED; ORDERPAID once paid, ORDER_CLOSED once closed; PARAM_ERROR for an
  out_trade_no outside 6-32 characters of `[0-9A-Za-z_-|*]`, an amount that is not a positive
  integer, a currency other than CNY, no openid, an unparsable time_expire, a notify_url with a
  query string or (except on loopback) not https; APPID_MCHID_NOT_MATCH for another appid.
- `GET /v3/pay/transactions/out-trade-no/{no}?mchid=` answers the transaction (404
  ORDERNOTEXIST); `POST .../{no}/close` closes it (204; ORDERPAID once paid).
- `POST /v3/refund/domestic/refunds` is idempotent by out_refund_no (the same one answers the
  same refund and never refunds twice; with other amounts INVALID_REQUEST); 404
  RESOURCE_NOT_EXISTS for an unknown order, INVALID_REQUEST for an unpaid one or a wrong total
  or past 50 refunds per order, 429 FREQUENCY_LIMITED within `refund_interval` seconds (60, as
  WeChat Pay requires) of the order's previous refund, 403 NOT_ENOUGH beyond what is left to
  refund. Refunds start PROCESSING; `complete_refund` (or `refund_delay`) ends them SUCCESS,
  ABNORMAL or CLOSED and sends the REFUND.* notify. `GET /v3/refund/domestic/refunds/{no}`
  answers a refund (404 RESOURCE_NOT_EXISTS).

Steering, for tests: `pay` (SUCCESS, then the signed, encrypted TRANSACTION.SUCCESS notify to the
order's notify_url), `send_notify` / `send_refund_notify` (again, several copies at once, late,
or with a fault: a bad signature, an unknown serial, a stale timestamp, a tampered ciphertext, a
wrong amount, another order's number, an unknown refund number), `complete_refund`, `set_trade_state`, `fail_next` (HTTP statuses, WeChat codes,
timeouts, dropped connections, "applied, but the answer is lost", replies with a bad signature or
none), and `signature_headers` (sign any body as WeChat Pay). Notifies our server does not answer
with 2xx are sent again after `notify_retry_delays` (WeChat Pay's own schedule runs from 15 s to
hours). It records every request it received (`requests`, `requests_to`) and every notify
delivery (`deliveries`); `refunds_of` shows the refunds it executed. A server trusts it through
`public_key_pem` / `public_key_id` and `certificate_pem` / `certificate_serial` (or simply
`client_config`); it trusts `merchant` (generated unless given) and any `trust_merchant` key.
"""
import asyncio
import base64
import copy
import hashlib
import itertools
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from fakes.served import ServedFake

from wechatpay import crypto
from lottery.validate import is_loopback
from wechatpay.client import WeChatPayConfig

MCHID = "1900000109"
APPID = "wx_test_appid"  # the mini-program of fakes/wechat.py
APIV3_KEY = "fakeApiV3Key0123456789abcdefABCD"  # 32 bytes, as WeChat Pay requires
CHINA = timezone(timedelta(hours=8))

# The status WeChat Pay answers each code with (fail_next takes a code alone).
CODE_STATUS = {"SYSTEM_ERROR": 500, "FREQUENCY_LIMITED": 429, "PARAM_ERROR": 400, "INVALID_REQUEST": 400,
               "ORDERPAID": 400, "ORDER_CLOSED": 400, "ORDERNOTEXIST": 404, "RESOURCE_NOT_EXISTS": 404,
               "SIGN_ERROR": 401, "NOT_ENOUGH": 403, "NO_AUTH": 403, "OUT_TRADE_NO_USED": 403,
               "APPID_MCHID_NOT_MATCH": 400, "MCH_NOT_EXISTS": 400, "BANK_ERROR": 500}
# Faults of a reply: no answer (timeout: held past the client's patience, then dropped; drop:
# the connection closes at once), applied but the answer lost, or a reply we must refuse.
REPLY_FAULTS = ("timeout", "drop", "apply_then_drop", "apply_then_timeout", "bad_signature", "unsigned",
                "unknown_serial")
# wrong_amount: one fen more than the record; wrong_trade_no: another order's number; unknown_refund_no: a
# refund number nobody made (refund notifies only).
NotifyFault = Literal["bad_signature", "unknown_serial", "stale", "tampered_ciphertext", "wrong_amount",
                      "wrong_trade_no", "unknown_refund_no"]

OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
TRADE_STATE_DESC = {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭", "REFUND": "转入退款",
                    "USERPAYING": "用户支付中", "PAYERROR": "支付失败", "REVOKED": "已撤销"}
REFUND_SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


@dataclass
class MerchantKeys:
    """A merchant API key pair and its certificate serial, generated for tests and development."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    serial: str

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    @property
    def public_pem(self) -> bytes:
        return crypto.public_pem(self.private_key)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def generate_merchant_keys() -> MerchantKeys:
    """A fresh merchant key pair with a random 40-hex-digit serial, as WeChat Pay issues them."""
    return MerchantKeys(new_rsa_key(), secrets.token_hex(20).upper())


def new_public_key_id() -> str:
    """`PUB_KEY_ID_0114` and thirty digits, the shape of WeChat Pay's public-key ids."""
    return "PUB_KEY_ID_0114" + "".join(secrets.choice("0123456789") for _ in range(30))


def self_signed_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A platform certificate stand-in: self-signed, valid a year around now."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (fake)")])
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, CHINA).isoformat(timespec="seconds")


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


BILL_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
               "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
               "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")
BILL_SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FEE_PER_MILLE = 6  # 0.60%, the usual rate


def yuan(fen: int) -> str:
    """Fen as the bill writes yuan: `12.34`, `-0.05`."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def bill_csv(lines: list[dict], appid: str, mchid: str) -> bytes:
    """A trade bill (bill_type ALL) in WeChat Pay's layout: the header, one line per payment or
    refund with every field behind a backquote, then the summary header and line."""
    rows, totals = [], {"settle": 0, "refund": 0, "fee": 0, "order": 0, "applied": 0}
    for line in lines:
        paid = line["kind"] == "SUCCESS"
        amount = line["amount"]
        fee = (amount * FEE_PER_MILLE + 500) // 1000 * (1 if paid else -1)
        fields = [line["time"][:19].replace("T", " "), appid, mchid, "0", "",
                  line["transaction_id"], line["out_trade_no"], line["openid"], "JSAPI", line["kind"], "OTHERS", "CNY",
                  yuan(amount if paid else 0), "0.00", line.get("refund_id", "0"), line.get("out_refund_no", "0"),
                  yuan(0 if paid else amount), "0.00", "" if paid else "ORIGINAL", "" if paid else "SUCCESS",
                  line["description"], "", yuan(fee), "0.60%", yuan(amount if paid else 0), yuan(0 if paid else amount),
                  ""]
        rows.append(",".join("`" + field for field in fields))
        totals["settle" if paid else "refund"] += amount
        totals["order" if paid else "applied"] += amount
        totals["fee"] += fee
    summary = [str(len(lines)), yuan(totals["settle"]), yuan(totals["refund"]), "0.00", yuan(totals["fee"]),
               yuan(totals["order"]), yuan(totals["applied"])]
    text = "\r\n".join([BILL_HEADER, *rows, BILL_SUMMARY_HEADER, ",".join("`" + f for f in summary)]) + "\r\n"
    return text.encode()


class Refused(Exception):
    """An error answer: status, WeChat Pay's code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Received:
    """One request the fake received, and how it answered (`status` None: no answer)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    fault: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Delivery:
    """One notify attempt: where it went, what it carried, how our server answered (`status`
    None: no answer)."""

    url: str
    event_type: str
    key: str  # the out_trade_no or out_refund_no
    fault: str | None
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    answer: bytes = b""


class FakeWeChatPay(ServedFake):
    """The fake server, its keys, its transactions and refunds, and what it has seen."""

    name = "fake-wechatpay"

    def __init__(self, mchid: str = MCHID, appid: str = APPID, apiv3_key: str = APIV3_KEY,
                 merchant: MerchantKeys | None = None, with_certificate: bool = True,
                 refund_interval: float = 60.0, refund_delay: float | None = None,
                 notify_retry_delays: Iterable[float] = (), slow_seconds: float = 15.0,
                 notify_signer: Literal["public_key", "certificate"] = "public_key") -> None:
        self.mchid, self.appid, self.apiv3_key = mchid, appid, apiv3_key
        self.merchant = merchant or generate_merchant_keys()  # the merchant this fake trusts first
        self.merchant_keys: dict[str, rsa.RSAPublicKey] = {self.merchant.serial: self.merchant.private_key.public_key()}
        # WeChat Pay's own keys: the public-key mode pair, and optionally a platform certificate.
        self._public_key = new_rsa_key()
        self.public_key_id = new_public_key_id()
        self._certificate_key = new_rsa_key() if with_certificate else None
        self.certificate = self_signed_certificate(self._certificate_key) if self._certificate_key else None
        self.certificate_serial = crypto.certificate_serial(self.certificate) if self.certificate else None
        self.notify_signer = notify_signer
        self.refund_interval = refund_interval
        self.refund_delay = refund_delay
        self.notify_retry_delays = tuple(notify_retry_delays)
        self.slow_seconds = slow_seconds
        self.notify_timeout = 5.0
        # State, touched only on the fake's loop.
        self.transactions: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[Received] = []
        self.deliveries: list[Delivery] = []
        self.queued: dict[str, deque] = defaultdict(deque)
        self.bill_files: dict[str, bytes] = {}  # download token -> the bill file
        self.bill_plants: dict[str, int | None] = {}  # tamper_bill: key -> amount shown, or None: dropped
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task] = set()
        super().__init__()

    # -- what a server needs to trust it --------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_key_pem(self) -> bytes:
        return crypto.public_pem(self._public_key)

    @property
    def certificate_pem(self) -> bytes | None:
        return self.certificate.public_bytes(serialization.Encoding.PEM) if self.certificate else None

    def trust_merchant(self, public_key_pem: bytes, serial: str) -> None:
        """Accept requests signed with this merchant key (certificate serial `serial`)."""
        self.merchant_keys[serial] = crypto.load_public_key(public_key_pem)

    def client_config(self, notify_url: str, refund_notify_url: str | None = None,
                      mode: Literal["public_key", "certificate", "both"] = "public_key",
                      merchant: MerchantKeys | None = None) -> WeChatPayConfig:
        """A client configuration for this fake: its merchant (or `merchant`), and WeChat Pay's
        public key (`public_key`), its platform certificate (`certificate`) or both."""
        merchant = merchant or self.merchant
        keys: dict[str, rsa.RSAPublicKey] = {}
        if mode in ("public_key", "both"):
            keys[self.public_key_id] = self._public_key.public_key()
        if mode in ("certificate", "both"):
            if self.certificate is None:
                raise ValueError("this fake has no platform certificate")
            keys[self.certificate_serial] = self.certificate.public_key()
        return WeChatPayConfig(mchid=self.mchid, appid=self.appid, apiv3_key=self.apiv3_key,
                               private_key=merchant.private_key, cert_serial=merchant.serial, verifier_keys=keys,
                               notify_url=notify_url, api_base=self.url, refund_notify_url=refund_notify_url,
                               public_key_id=self.public_key_id if mode != "certificate" else None)

    # -- running ----------------------------------------------------------------------------

    def routes(self) -> list:
        return [(r"/v3/.*", self._endpoint())]

    async def on_start(self) -> None:
        self._http = AsyncHTTPClient(force_instance=True, max_clients=200)

    async def on_stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.close_all_connections()
        self._http.close()

    def _spawn(self, coro: Coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_loop(self, coro: Coroutine) -> Any:
        """Run `coro` on the fake's loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake when the fake stops (so a held answer never delays stop())."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            pass

    def _sync(self, function, *args) -> Any:
        """Call `function` on the fake's loop from another thread and return its result."""
        async def call():
            return function(*args)
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    # -- steering ---------------------------------------------------------------------------

    def fail_next(self, path_prefix: str, answer: int | str, times: int = 1) -> None:
        """The next `times` requests whose path starts with `path_prefix` fail: an HTTP status
        (int, plain-text body), a WeChat Pay code (`SYSTEM_ERROR`, `FREQUENCY_LIMITED`, ... with
        its status, signed), or one of REPLY_FAULTS."""
        if isinstance(answer, str) and answer not in REPLY_FAULTS and answer not in CODE_STATUS:
            raise ValueError(f"unknown failure {answer!r}")
        for _ in range(times):
            self.queued[path_prefix].append(answer)

    async def pay(self, out_trade_no: str, notify: bool = True, payer_total: int | None = None) -> list[Delivery]:
        """The payer pays: the transaction goes NOTPAY -> SUCCESS and (unless `notify` is False:
        the notify is lost) the TRANSACTION.SUCCESS notify goes to its notify_url. Returns the
        delivery."""
        return await self._on_loop(self._pay(out_trade_no, notify, payer_total))

    async def send_notify(self, out_trade_no: str, copies: int = 1, delay: float = 0.0,
                          fault: NotifyFault | None = None, signer: str | None = None) -> list[Delivery]:
        """Send a paid transaction's notify again: `copies` at once (duplicates, concurrent),
        after `delay` seconds (late), signed by `signer` ("public_key" or "certificate";
        default `notify_signer`), or with one `fault`."""
        return await self._on_loop(self._send("transaction", out_trade_no, copies, delay, fault, signer))

    async def complete_refund(self, out_refund_no: str, status: Literal["SUCCESS", "ABNORMAL", "CLOSED"] = "SUCCESS",
                              notify: bool = True) -> list[Delivery]:
        """A PROCESSING refund ends in `status`; its REFUND.* notify goes to its notify_url."""
        return await self._on_loop(self._complete_refund(out_refund_no, status, notify))

    async def send_refund_notify(self, out_refund_no: str, copies: int = 1, delay: float = 0.0,
                                 fault: NotifyFault | None = None, signer: str | None = None) -> list[Delivery]:
        """Send a finished refund's notify again (as `send_notify`)."""
        return await self._on_loop(self._send("refund", out_refund_no, copies, delay, fault, signer))

    def set_trade_state(self, out_trade_no: str, state: str) -> None:
        """Force a transaction's trade_state (USERPAYING, PAYERROR, ...) for reconciliation tests."""
        if state not in TRADE_STATE_DESC:
            raise ValueError(f"unknown trade_state {state!r}")
        self._sync(lambda: self.transactions[out_trade_no].update(trade_state=state))

    def transaction(self, out_trade_no: str) -> dict | None:
        """A copy of the transaction as it stands."""
        return self._sync(lambda: copy.deepcopy(self.transactions.get(out_trade_no)))

    def refunds_of(self, out_trade_no: str) -> list[dict]:
        """Copies of the refunds executed for this order, oldest first."""
        return self._sync(lambda: [copy.deepcopy(refund) for refund in self.refunds.values()
                                   if refund["out_trade_no"] == out_trade_no])

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[Received]:
        """The requests received whose path starts with `path_prefix`."""
        return [r for r in list(self.requests) if r.path.startswith(path_prefix) and method in (None, r.method)]

    # -- the HTTP side ----------------------------------------------------------------------

    def _endpoint(self) -> type:
        fake = self

        class Endpoint(web.RequestHandler):
            async def get(self) -> None:
                await self.serve()

            async def post(self) -> None:
                await self.serve()

            async def serve(self) -> None:
                path = urlsplit(self.request.uri).path
                received = Received(self.request.method, path,
                                    {k: self.get_query_argument(k) for k in self.request.query_arguments},
                                    dict(self.request.headers.get_all()), self.request.body)
                fake.requests.append(received)
                try:
                    fake._authenticate(self.request)
                except Refused as refused:  # WeChat Pay does not sign what it could not verify
                    self.answer(received, refused.status, {"code": refused.code, "message": refused.message}, None)
                    return
                fault = fake._next_fault(path)
                received.fault = fault if isinstance(fault, str) else None
                if fault in ("timeout", "drop"):
                    await self.lose_answer(fault == "timeout")
                    return
                if isinstance(fault, int):
                    self.set_status(fault)
                    received.status = fault
                    self.finish("upstream error")
                    return
                if isinstance(fault, str) and fault in CODE_STATUS:
                    status, answer = CODE_STATUS[fault], {"code": fault, "message": "fake failure"}
                else:
                    try:
                        status, answer = fake._apply(self.request.method, path, received.query, self.request.body)
                    except Refused as refused:
                        status, answer = refused.status, {"code": refused.code, "message": refused.message}
                if fault in ("apply_then_drop", "apply_then_timeout"):
                    await self.lose_answer(fault == "apply_then_timeout")
                    return
                signature = ("valid" if fault not in ("unsigned", "bad_signature", "unknown_serial")
                             else None if fault == "unsigned" else fault)
                self.answer(received, status, answer, signature)

            async def lose_answer(self, slowly: bool) -> None:
                if slowly:
                    await fake._pause(fake.slow_seconds)
                self.detach().close()

            def answer(self, received: Received, status: int, answer: dict | bytes | None,
                       signature: str | None) -> None:
                """Write the reply; `signature` "valid", None (unsigned) or a signature fault. A
                file (bytes: a bill download) goes unsigned, as WeChat Pay sends it."""
                received.status = status
                self.set_status(status)
                self.set_header("Request-ID", f"fake-{next(fake._ids)}")
                if isinstance(answer, bytes):
                    self.set_header("Content-Type", "application/octet-stream")
                    self.finish(answer)
                    return
                body = json.dumps(answer, ensure_ascii=False).encode() if answer is not None else b""
                if signature is not None:
                    signer = fake._reply_signer(self.request.headers.get("Wechatpay-Serial", ""))
                    fault = signature if signature != "valid" else None
                    for name, value in fake.signature_headers(body, signer, fault).items():
                        self.set_header(name, value)
                if body:
                    self.set_header("Content-Type", "application/json; charset=utf-8")
                    self.finish(body)
                else:
                    self.clear_header("Content-Type")
                    self.finish()

        return Endpoint

    def _next_fault(self, path: str) -> int | str | None:
        for prefix, queue in self.queued.items():
            if path.startswith(prefix) and queue:
                return queue.popleft()
        return None

    def _authenticate(self, request) -> None:
        """The merchant's Authorization signature, as WeChat Pay checks it (401 SIGN_ERROR)."""
        try:
            fields = crypto.parse_authorization(request.headers.get("Authorization", ""))
        except crypto.MalformedMessage as exc:
            raise Refused(401, "SIGN_ERROR", f"Http头Authorization值格式错误: {exc}") from None
        if fields["mchid"] != self.mchid:
            raise Refused(401, "SIGN_ERROR", "商户号与签名不匹配")
        key = self.merchant_keys.get(fields["serial_no"])
        if key is None:
            raise Refused(401, "SIGN_ERROR", "商户证书序列号有误")
        if not fields["timestamp"].isdigit() or abs(int(fields["timestamp"]) - time.time()) > crypto.TIMESTAMP_WINDOW:
            raise Refused(401, "SIGN_ERROR", "请求时间戳与当前时间相差超过5分钟")
        message = crypto.request_message(request.method, request.uri, fields["timestamp"], fields["nonce_str"],
                                         request.body)
        if not crypto.signature_valid(key, message, fields["signature"]):
            raise Refused(401, "SIGN_ERROR", "签名错误")

    def _reply_signer(self, requested_serial: str) -> str:
        if requested_serial == self.public_key_id or self.certificate is None:
            return "public_key"
        return "certificate"

    def signature_headers(self, body: bytes, signer: str = "public_key", fault: str | None = None,
                          timestamp: int | None = None) -> dict[str, str]:
        """Wechatpay-* headers signing `body` as WeChat Pay does, with its public key or its
        platform certificate (`signer`), or with a fault ("bad_signature", "unknown_serial")."""
        key, serial = ((self._public_key, self.public_key_id) if signer == "public_key"
                       else (self._certificate_key, self.certificate_serial))
        if fault == "unknown_serial":
            key, serial = new_rsa_key(), new_public_key_id()
        timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
        nonce = crypto.new_nonce()
        signature = crypto.sign(key, crypto.signed_message(timestamp_text, nonce, body))
        if fault == "bad_signature":  # what WeChat Pay's own probes look like
            signature = "WECHATPAY/SIGNTEST/" + base64.b64encode(secrets.token_bytes(256)).decode()
        return {"Wechatpay-Serial": serial, "Wechatpay-Signature": signature, "Wechatpay-Timestamp": timestamp_text,
                "Wechatpay-Nonce": nonce, "Wechatpay-Signature-Type": crypto.SCHEMA}

    # -- the API's rules --------------------------------------------------------------------

    def _apply(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, dict | None]:
        """What WeChat Pay does with one authenticated request: (status, answer) or Refused."""
        body: Any = None
        if method == "POST":
            try:
                body = json.loads(raw)
            except ValueError:
                raise Refused(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
            if not isinstance(body, dict):
                raise Refused(400, "PARAM_ERROR", "请求体不是JSON对象")
        if (method, path) == ("POST", "/v3/pay/transactions/jsapi"):
            return 200, self._jsapi(body)
        match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path)
        if match and method == "GET":
            if query.get("mchid") != self.mchid:
                raise Refused(400, "PARAM_ERROR", "mchid与请求商户号不一致")
            return 200, self._transaction_view(self._known(unquote(match.group(1))))
        match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path)
        if match and method == "POST":
            if body.get("mchid") != self.mchid:
                raise Refused(400, "PARAM_ERROR", "mchid与请求商户号不一致")
            self._close(self._known(unquote(match.group(1))))
            return 204, None
        if (method, path) == ("POST", "/v3/refund/domestic/refunds"):
            return 200, self._refund(body)
        match = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)
        if match and method == "GET":
            refund = self.refunds.get(unquote(match.group(1)))
            if refund is None:
                raise Refused(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return 200, self._refund_view(refund)
        if (method, path) == ("GET", "/v3/bill/tradebill"):
            return 200, self._trade_bill(query)
        if (method, path) == ("GET", "/v3/billdownload/file"):
            bill = self.bill_files.get(query.get("token", ""))
            if bill is None:
                raise Refused(400, "PARAM_ERROR", "下载链接已失效")
            return 200, bill
        raise Refused(404, "NOT_FOUND", "接口不存在")

    # -- bills ------------------------------------------------------------------------------

    def _trade_bill(self, query: dict[str, str]) -> dict:
        """`GET /v3/bill/tradebill?bill_date=&bill_type=ALL`: the day's bill, built from what it
        charged and refunded that day (Asia/Shanghai), behind a download URL with its SHA1."""
        day = query.get("bill_date", "")
        try:
            date = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            raise Refused(400, "PARAM_ERROR", "bill_date格式须为yyyy-MM-DD") from None
        if query.get("bill_type", "ALL") not in ("ALL", "SUCCESS", "REFUND"):
            raise Refused(400, "PARAM_ERROR", "bill_type须为ALL、SUCCESS或REFUND")
        if date > datetime.now(CHINA).date():
            raise Refused(400, "NO_STATEMENT_EXIST", "账单文件不存在，请检查账单日期")
        lines = self._bill_lines(day)
        if not lines:
            raise Refused(400, "NO_STATEMENT_EXIST", "当日无交易，账单文件不存在")
        content = bill_csv(lines, self.appid, self.mchid)
        token = secrets.token_urlsafe(24)
        self.bill_files[token] = content
        return {"hash_type": "SHA1", "hash_value": hashlib.sha1(content).hexdigest(),
                "download_url": f"{self.url}/v3/billdownload/file?token={token}"}

    def _bill_lines(self, day: str) -> list[dict]:
        """The day's payment and refund lines as WeChat Pay's ALL bill lists them, with the
        steering's plants applied (a line dropped, an amount changed)."""
        lines = []
        for transaction in self.transactions.values():
            if transaction["success_time"] and transaction["success_time"][:10] == day:
                lines.append({"time": transaction["success_time"], "kind": "SUCCESS",
                              "transaction_id": transaction["transaction_id"],
                              "out_trade_no": transaction["out_trade_no"], "openid": transaction["openid"],
                              "amount": transaction["total"], "description": transaction["request"]["description"]})
        for refund in self.refunds.values():
            if refund["status"] == "SUCCESS" and refund["success_time"][:10] == day:
                transaction = self.transactions[refund["out_trade_no"]]
                lines.append({"time": refund["success_time"], "kind": "REFUND",
                              "transaction_id": refund["transaction_id"], "out_trade_no": refund["out_trade_no"],
                              "openid": transaction["openid"], "amount": refund["refund"],
                              "refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
                              "description": transaction["request"]["description"]})
        planted = []
        for line in sorted(lines, key=lambda line: line["time"]):
            key = line.get("out_refund_no") or line["out_trade_no"]
            if key in self.bill_plants:
                if self.bill_plants[key] is None:
                    continue
                line["amount"] = self.bill_plants[key]
            planted.append(line)
        return planted

    def tamper_bill(self, key: str, amount_fen: int | None) -> None:
        """The bill shows the line of `key` (an out_trade_no or out_refund_no) with this amount,
        or (None) not at all: a discrepancy for reconciliation tests."""
        self._sync(lambda: self.bill_plants.__setitem__(key, amount_fen))

    def plant_refund(self, out_trade_no: str, refund_fen: int) -> str:
        """A refund made at WeChat Pay outside our server (the merchant platform), already
        SUCCESS, no notify sent. Its out_refund_no."""
        def plant() -> str:
            transaction = self._known(out_trade_no)
            no = f"manual{digits(10)}"
            now = time.time()
            self.refunds[no] = {
                "out_refund_no": no, "refund_id": "50" + digits(27), "out_trade_no": out_trade_no,
                "transaction_id": transaction["transaction_id"], "refund": refund_fen, "total": transaction["total"],
                "reason": "商户平台退款", "notify_url": None, "status": "SUCCESS", "create_time": rfc3339(now),
                "success_time": rfc3339(now), "payer_total": transaction["payer_total"]}
            transaction["trade_state"] = "REFUND"
            return no
        return self._sync(plant)

    def _known(self, out_trade_no: str) -> dict:
        transaction = self.transactions.get(out_trade_no)
        if transaction is None:
            raise Refused(404, "ORDERNOTEXIST", "订单不存在")
        return transaction

    def _check_notify_url(self, url: Any) -> None:
        parts = urlsplit(url) if isinstance(url, str) else None
        if (parts is None or not parts.hostname or parts.query or parts.scheme not in ("http", "https")
                or (parts.scheme == "http" and not is_loopback(parts.hostname))):
            raise Refused(400, "PARAM_ERROR", "notify_url格式不正确：须为https且不能携带参数")

    def _jsapi(self, body: dict) -> dict:
        if body.get("appid") != self.appid:
            raise Refused(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if body.get("mchid") != self.mchid:
            raise Refused(400, "MCH_NOT_EXISTS", "商户号不存在")
        no = body.get("out_trade_no")
        if not isinstance(no, str) or not OUT_TRADE_NO.fullmatch(no):
            raise Refused(400, "PARAM_ERROR", "out_trade_no须为6-32位数字、大小写字母或_-|*")
        description = body.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 127:
            raise Refused(400, "PARAM_ERROR", "description长度须为1-127")
        amount = body.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        if type(total) is not int or total <= 0:
            raise Refused(400, "PARAM_ERROR", "amount.total须为正整数（单位：分）")
        if amount.get("currency", "CNY") != "CNY":
            raise Refused(400, "PARAM_ERROR", "amount.currency只支持CNY")
        payer = body.get("payer")
        if not isinstance(payer, dict) or not isinstance(payer.get("openid"), str) or not payer["openid"]:
            raise Refused(400, "PARAM_ERROR", "payer.openid不能为空")
        self._check_notify_url(body.get("notify_url"))
        expires = None
        if "time_expire" in body:
            try:
                expires = datetime.fromisoformat(body["time_expire"])
            except (TypeError, ValueError):
                expires = None
            if expires is None or expires.tzinfo is None or "T" not in body["time_expire"]:
                raise Refused(400, "PARAM_ERROR", "time_expire须为RFC 3339格式，如2018-06-08T10:34:56+08:00")
        existing = self.transactions.get(no)
        if existing is not None:
            if existing["trade_state"] in ("SUCCESS", "REFUND"):
                raise Refused(400, "ORDERPAID", "该订单已支付")
            if existing["trade_state"] == "CLOSED":
                raise Refused(400, "ORDER_CLOSED", "该订单已关闭")
            if existing["request"] != body:
                raise Refused(403, "OUT_TRADE_NO_USED", "商户订单号重复")
            return {"prepay_id": existing["prepay_id"]}
        self.transactions[no] = {
            "out_trade_no": no, "request": copy.deepcopy(body), "openid": payer["openid"], "total": total,
            "notify_url": body["notify_url"], "expires": expires.timestamp() if expires else None,
            "prepay_id": "wx" + datetime.now(CHINA).strftime("%d%H%M%S") + secrets.token_hex(13),
            "trade_state": "NOTPAY", "transaction_id": None, "success_time": None, "payer_total": None,
            "last_refund_at": None, "paid_view": None}
        return {"prepay_id": self.transactions[no]["prepay_id"]}

    def _transaction_view(self, transaction: dict) -> dict:
        """The transaction as query and notify show it."""
        state = transaction["trade_state"]
        view = {"appid": self.appid, "mchid": self.mchid, "out_trade_no": transaction["out_trade_no"],
                "trade_state": state, "trade_state_desc": TRADE_STATE_DESC[state],
                "amount": {"total": transaction["total"], "currency": "CNY", "payer_currency": "CNY"},
                "payer": {}, "attach": "", "promotion_detail": []}
        if transaction["transaction_id"]:
            view.update(transaction_id=transaction["transaction_id"], trade_type="JSAPI", bank_type="OTHERS",
                        success_time=transaction["success_time"], payer={"openid": transaction["openid"]})
            view["amount"].update(payer_total=transaction["payer_total"])
        return view

    def _close(self, transaction: dict) -> None:
        if transaction["trade_state"] in ("SUCCESS", "REFUND"):
            raise Refused(400, "ORDERPAID", "订单已支付，不能关闭")
        transaction["trade_state"] = "CLOSED"

    def _refund(self, body: dict) -> dict:
        no = body.get("out_refund_no")
        if not isinstance(no, str) or not OUT_REFUND_NO.fullmatch(no):
            raise Refused(400, "PARAM_ERROR", "out_refund_no须为1-64位数字、大小写字母或_-|*@")
        amount = body.get("amount")
        refund, total = (amount.get("refund"), amount.get("total")) if isinstance(amount, dict) else (None, None)
        if type(refund) is not int or type(total) is not int or refund <= 0 or total <= 0:
            raise Refused(400, "PARAM_ERROR", "amount.refund和amount.total须为正整数（单位：分）")
        if amount.get("currency") != "CNY":
            raise Refused(400, "PARAM_ERROR", "amount.currency只支持CNY")
        if "notify_url" in body:
            self._check_notify_url(body["notify_url"])
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 80):
            raise Refused(400, "PARAM_ERROR", "reason不能超过80个字符")
        out_trade_no = body.get("out_trade_no")
        transaction = self.transactions.get(out_trade_no) if isinstance(out_trade_no, str) else None
        if transaction is None:
            raise Refused(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = self.refunds.get(no)
        if existing is not None:  # the same out_refund_no never refunds twice
            if (existing["out_trade_no"], existing["refund"], existing["total"]) != (out_trade_no, refund, total):
                raise Refused(400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致")
            return self._refund_view(existing)
        if transaction["trade_state"] not in ("SUCCESS", "REFUND"):
            raise Refused(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if total != transaction["total"]:
            raise Refused(400, "INVALID_REQUEST", "amount.total与原订单金额不一致")
        executed = [r for r in self.refunds.values() if r["out_trade_no"] == transaction["out_trade_no"]]
        if len(executed) >= 50:
            raise Refused(400, "INVALID_REQUEST", "每笔订单最多50次部分退款")
        last = transaction["last_refund_at"]
        if last is not None and time.time() - last < self.refund_interval:
            raise Refused(429, "FREQUENCY_LIMITED", "同一笔订单多次退款需相隔1分钟")
        left = transaction["total"] - sum(r["refund"] for r in executed if r["status"] != "CLOSED")
        if refund > left:
            raise Refused(403, "NOT_ENOUGH", f"申请退款金额超过订单可退金额（可退{left}分）")
        now = time.time()
        self.refunds[no] = {
            "out_refund_no": no, "refund_id": "50" + digits(27), "out_trade_no": transaction["out_trade_no"],
            "transaction_id": transaction["transaction_id"], "refund": refund, "total": total, "reason": reason,
            "notify_url": body.get("notify_url"), "status": "PROCESSING", "create_time": rfc3339(now),
            "success_time": None, "payer_total": transaction["payer_total"]}
        transaction["trade_state"] = "REFUND"
        transaction["last_refund_at"] = now
        if self.refund_delay is not None:
            self._spawn(self._complete_refund(no, "SUCCESS", True, delay=self.refund_delay))
        return self._refund_view(self.refunds[no])

    def _refund_view(self, refund: dict) -> dict:
        view = {"refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"],
                "transaction_id": refund["transaction_id"], "out_trade_no": refund["out_trade_no"],
                "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
                "create_time": refund["create_time"], "status": refund["status"], "funds_account": "AVAILABLE",
                "amount": {"total": refund["total"], "refund": refund["refund"], "from": [],
                           "payer_total": refund["payer_total"], "payer_refund": refund["refund"],
                           "settlement_refund": refund["refund"], "settlement_total": refund["total"],
                           "discount_refund": 0, "currency": "CNY", "refund_fee": 0},
                "promotion_detail": []}
        if refund["success_time"]:
            view["success_time"] = refund["success_time"]
        return view

    def _refund_notice(self, refund: dict) -> dict:
        """The decrypted resource of a REFUND.* notify."""
        notice = {"mchid": self.mchid, "out_trade_no": refund["out_trade_no"],
                  "transaction_id": refund["transaction_id"], "out_refund_no": refund["out_refund_no"],
                  "refund_id": refund["refund_id"], "refund_status": refund["status"],
                  "user_received_account": "支付用户零钱",
                  "amount": {"total": refund["total"], "refund": refund["refund"],
                             "payer_total": refund["payer_total"], "payer_refund": refund["refund"]}}
        if refund["success_time"]:
            notice["success_time"] = refund["success_time"]
        return notice

    # -- payments and notifies, on the fake's loop ------------------------------------------

    async def _pay(self, out_trade_no: str, notify: bool, payer_total: int | None) -> list[Delivery]:
        transaction = self.transactions.get(out_trade_no)
        if transaction is None or transaction["trade_state"] not in ("NOTPAY", "USERPAYING"):
            raise ValueError(f"{out_trade_no} cannot be paid (unknown, or not NOTPAY)")
        if transaction["expires"] is not None and time.time() > transaction["expires"]:
            raise ValueError(f"{out_trade_no} expired at its time_expire")
        transaction.update(trade_state="SUCCESS", transaction_id="4200" + digits(24), success_time=rfc3339(time.time()),
                           payer_total=transaction["total"] if payer_total is None else payer_total)
        transaction["paid_view"] = self._transaction_view(transaction)
        if not notify:
            return []
        return await self._send("transaction", out_trade_no, 1, 0.0, None, None)

    async def _complete_refund(self, out_refund_no: str, status: str, notify: bool,
                               delay: float = 0.0) -> list[Delivery]:
        if delay:
            await self._pause(delay)
        refund = self.refunds.get(out_refund_no)
        if refund is None or refund["status"] != "PROCESSING":
            raise ValueError(f"{out_refund_no} is not a PROCESSING refund")
        if status not in REFUND_SUMMARY:
            raise ValueError(f"a refund ends SUCCESS, ABNORMAL or CLOSED, not {status!r}")
        refund["status"] = status
        if status == "SUCCESS":
            refund["success_time"] = rfc3339(time.time())
        if not notify or not refund["notify_url"]:
            return []
        return await self._send("refund", out_refund_no, 1, 0.0, None, None)

    async def _send(self, kind: str, key: str, copies: int, delay: float, fault: str | None,
                    signer: str | None) -> list[Delivery]:
        if kind == "transaction":
            transaction = self.transactions.get(key)
            if transaction is None or transaction["paid_view"] is None:
                raise ValueError(f"{key} was never paid: nothing to notify")
            resource, url = copy.deepcopy(transaction["paid_view"]), transaction["notify_url"]
            event_type, summary = "TRANSACTION.SUCCESS", "支付成功"
            if fault == "wrong_amount":
                resource["amount"]["total"] += 1
                resource["amount"]["payer_total"] += 1
        else:
            refund = self.refunds.get(key)
            if refund is None or refund["status"] == "PROCESSING" or not refund["notify_url"]:
                raise ValueError(f"{key} is not a finished refund with a notify_url")
            resource, url = self._refund_notice(refund), refund["notify_url"]
            event_type, summary = "REFUND." + refund["status"], REFUND_SUMMARY[refund["status"]]
            if fault == "wrong_amount":
                resource["amount"]["refund"] += 1
                resource["amount"]["payer_refund"] += 1
            elif fault == "unknown_refund_no":
                resource["out_refund_no"] += "9"
        if fault == "wrong_trade_no":
            resource["out_trade_no"] = "f" * 24
        if delay:
            await self._pause(delay)
        retries = self.notify_retry_delays
        attempts = [self._deliver(url, kind, event_type, summary, key, resource, fault, signer, retries)
                    for _ in range(copies)]
        return list(await asyncio.gather(*attempts))

    def _notify_message(self, kind: str, event_type: str, summary: str, resource: dict, fault: str | None,
                        signer: str) -> tuple[dict[str, str], bytes]:
        """The headers and body of one notify, signed and encrypted as WeChat Pay does."""
        nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay's resource nonces
        ciphertext = crypto.encrypt_resource(self.apiv3_key, json.dumps(resource, ensure_ascii=False).encode(),
                                             kind, nonce)
        if fault == "tampered_ciphertext":  # signed as sent, so only the decryption can catch it
            raw = bytearray(base64.b64decode(ciphertext))
            raw[len(raw) // 2] ^= 0x01
            ciphertext = base64.b64encode(bytes(raw)).decode()
        body = json.dumps({
            "id": secrets.token_hex(18), "create_time": rfc3339(time.time()), "resource_type": "encrypt-resource",
            "event_type": event_type, "summary": summary,
            "resource": {"original_type": kind, "algorithm": "AEAD_AES_256_GCM", "ciphertext": ciphertext,
                         "associated_data": kind, "nonce": nonce}}, ensure_ascii=False).encode()
        stale = int(time.time()) - crypto.TIMESTAMP_WINDOW - 60 if fault == "stale" else None
        signature_fault = fault if fault in ("bad_signature", "unknown_serial") else None
        headers = {"Content-Type": "application/json",
                   **self.signature_headers(body, signer, signature_fault, timestamp=stale)}
        return headers, body

    async def _deliver(self, url: str, kind: str, event_type: str, summary: str, key: str, resource: dict,
                       fault: str | None, signer: str | None, retries: tuple[float, ...]) -> Delivery:
        """POST one notify; WeChat Pay tries again later while the answer is not 2xx."""
        headers, body = self._notify_message(kind, event_type, summary, resource, fault, signer or self.notify_signer)
        delivery = Delivery(url, event_type, key, fault, headers, body)
        self.deliveries.append(delivery)
        try:
            response = await self._http.fetch(HTTPRequest(url, method="POST", headers=headers, body=body,
                                                          request_timeout=self.notify_timeout), raise_error=False)
            delivery.status, delivery.answer = response.code, response.body or b""
            if response.code == 599:
                delivery.status = None
        except (HTTPClientError, OSError):
            delivery.status = None
        if (delivery.status is None or not 200 <= delivery.status < 300) and retries:
            async def again() -> None:
                await self._pause(retries[0])
                await self._deliver(url, kind, event_type, summary, key, resource, fault, signer, retries[1:])
            self._spawn(again())
        return delivery
