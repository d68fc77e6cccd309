"""The realtime channel's JSON text frames (UTF-8 bytes), encoded once per change whatever the
number of receivers: a result's frame for N watchers is one shared head and one `me` per member
state. orjson encodes them: the same compact JSON as the standard library's (Chinese kept as
UTF-8), at a twentieth of the cost, which matters at one `me` per watcher (docs/benchmarks.md)."""
import orjson

SNAPSHOT, OPENED = b'{"type":"snapshot",', b'{"type":"opened",'


def encode(message: dict | str) -> bytes:
    """Compact JSON, UTF-8."""
    return orjson.dumps(message)


def error(code: str, message: str, **extra: object) -> bytes:
    """`{type: error, code, message, ...}`."""
    return encode({"type": "error", "code": code, "message": message, **extra})


def progress(order_id: str, state: dict) -> bytes:
    """`{type: progress, order_id, version, joined_count, open_number, status}`, and `freeze`
    once a drawing gift's participant list is frozen (before its beacon round exists)."""
    frame = {"type": "progress", "order_id": order_id, "version": state["version"],
             "joined_count": state["joined_count"], "open_number": state.get("open_number"),
             "status": state.get("status")}
    if state.get("freeze"):
        frame["freeze"] = state["freeze"]
    return encode(frame)


def gift_head(order_id: str, version: int, gift_view: dict) -> bytes:
    """What a snapshot and an opened frame of this gift version share."""
    return b'"order_id":%s,"version":%d,"gift":%s,"me":' % (encode(order_id), version, encode(gift_view))


def gift_frame(kind: bytes, head: bytes, me: bytes) -> bytes:
    """A `snapshot` or `opened` frame: its kind, the shared head, the member's own `me`."""
    return b"".join((kind, head, me, b"}"))
