"""WeChat Pay's notifies (handlers/payment.py): not a member's call but WeChat Pay's, trusted by
their signature (the Wechatpay-* headers) and their encrypted resource, so no security scheme.
They answer WeChat Pay's way: 204 accepted, or `{code, message}`, after which it retries."""
from handlers.openapi.blocks import JSON, STRING, answer, obj, ref, text

SCHEMAS: dict[str, dict] = {
    "NotifyRefused": obj({"code": {"enum": ["SIGN_ERROR", "PARAM_ERROR", "NOT_CONFIGURED"]}, "message": STRING}),
}

SIGNATURE_HEADERS = [
    {"name": name, "in": "header", "required": True, "schema": text(1, 512), "description": description}
    for name, description in (
        ("Wechatpay-Serial", "the signing key: a public-key id (PUB_KEY_ID_...) or a platform certificate's serial"),
        ("Wechatpay-Signature", "SHA256withRSA over `timestamp\\nnonce\\nbody\\n`, base64"),
        ("Wechatpay-Timestamp", "Unix seconds, within five minutes of the server's clock"),
        ("Wechatpay-Nonce", "the signature's nonce"))
] + [{"name": "Wechatpay-Signature-Type", "in": "header", "required": False,
      "schema": {"const": "WECHATPAY2-SHA256-RSA2048"}}]


def notify(summary: str, original_type: str, mismatch: str) -> dict:
    """A notify route: WeChat Pay's signed body with its encrypted resource of `original_type`."""
    body = {"type": "object", "required": ["resource_type", "resource"], "properties": {
        "id": STRING, "create_time": STRING, "event_type": STRING, "summary": STRING,
        "resource_type": {"const": "encrypt-resource"},
        "resource": {"type": "object", "required": ["algorithm", "ciphertext", "nonce", "original_type"],
                     "properties": {"algorithm": {"const": "AEAD_AES_256_GCM"}, "ciphertext": STRING,
                                    "nonce": STRING, "associated_data": STRING,
                                    "original_type": {"const": original_type}}}}}
    refused = {"401": answer("SIGN_ERROR: the signature, its serial, its timestamp or the resource does not "
                             "verify (WeChat Pay sends such probes on purpose)", ref("NotifyRefused")),
               "404": answer("NOT_CONFIGURED: this server takes no payments", ref("NotifyRefused"))}
    refused["400"] = answer(f"PARAM_ERROR: verified, but {mismatch}; nothing changes and WeChat Pay sends it "
                            "again", ref("NotifyRefused"))
    return {"summary": summary, "security": [], "parameters": SIGNATURE_HEADERS,
            "requestBody": {"required": True, "content": {JSON: {"schema": body}}},
            "responses": {"204": answer("accepted, duplicates included: WeChat Pay stops sending it"), **refused}}


PATHS = {
    "/api/payment/wechat/notify": {"post": notify(
        "WeChat Pay's TRANSACTION.SUCCESS: the order is paid once, however often it comes", "transaction",
        "it names no order of ours or does not match its order (merchant, app, amount)")},
    "/api/payment/wechat/refund-notify": {"post": notify(
        "WeChat Pay's REFUND.SUCCESS, REFUND.CLOSED or REFUND.ABNORMAL: applied once", "refund",
        "it names no refund of ours (out_refund_no) or does not match it (out_trade_no, amount.refund)")},
}
