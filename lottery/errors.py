"""Domain exceptions. Each has a stable `code`, an HTTP-ish `status` for the v1 API and a
Chinese `message` shown to users (the legacy API sends it as the envelope's message)."""


class LotteryError(Exception):
    code = "error"
    status = 400
    message = "请求错误"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class InvalidInput(LotteryError):
    code = "invalid_input"
    message = "参数错误"


class BodyTooLarge(InvalidInput):
    code = "body_too_large"
    status = 413
    message = "请求体过大"


class MissingParams(InvalidInput):
    code = "missing_params"
    message = "缺少参数"


class LoginExpired(LotteryError):
    code = "login_expired"
    status = 401
    message = "login_key已过期"


class Forbidden(LotteryError):
    code = "forbidden"
    status = 403
    message = "没有权限"


class GiftNotFound(LotteryError):
    code = "gift_not_found"
    status = 404
    message = "订单错误，参与失败"


class OwnGift(LotteryError):
    code = "own_gift"
    status = 403
    message = "不能参与自己发起的礼物"


class AlreadyJoined(LotteryError):
    code = "already_joined"
    status = 409
    message = "你已经参与过了"


class GiftFull(LotteryError):
    code = "full"
    status = 409
    message = "参与人数已满"


class GiftClosed(LotteryError):
    code = "closed"
    status = 410
    message = "参与时间已过"


class GiftOpened(GiftClosed):
    code = "opened"
    message = "已经开奖"


class NoItemsLeft(GiftClosed):
    code = "no_items_left"
    message = "没有礼品可以领取"


class NotOpenable(LotteryError):
    code = "not_openable"
    status = 409
    message = "直接送礼不能提前开奖"


class NotOpenedYet(LotteryError):
    code = "not_opened"
    status = 409
    message = "尚未开奖"


class UpstreamError(LotteryError):
    """WeChat (or another upstream) refused or did not answer."""

    code = "upstream_error"
    status = 502
    message = "微信服务暂时不可用，请稍后再试"
