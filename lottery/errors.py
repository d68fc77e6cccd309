"""Domain exceptions. Each has a stable `code` and a Chinese `message` shown to users (the legacy
API sends it as the envelope's message). Which HTTP status each means is the handlers' business
(handlers/errors.py)."""


class LotteryError(Exception):
    code = "error"
    message = "请求错误"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class InvalidInput(LotteryError):
    code = "invalid_input"
    message = "参数错误"


class MissingParams(InvalidInput):
    code = "missing_params"
    message = "缺少参数"


class LoginExpired(LotteryError):
    code = "login_expired"
    message = "login_key已过期"


class Forbidden(LotteryError):
    code = "forbidden"
    message = "没有权限"


class GiftNotFound(LotteryError):
    code = "gift_not_found"
    message = "订单错误，参与失败"


class OwnGift(LotteryError):
    code = "own_gift"
    message = "不能参与自己发起的礼物"


class AlreadyJoined(LotteryError):
    code = "already_joined"
    message = "你已经参与过了"


class GiftFull(LotteryError):
    code = "full"
    message = "参与人数已满"


class GiftClosed(LotteryError):
    code = "closed"
    message = "参与时间已过"


class GiftOpened(GiftClosed):
    code = "opened"
    message = "已经开奖"


class NoItemsLeft(GiftClosed):
    code = "no_items_left"
    message = "没有礼品可以领取"


class NotOpenable(LotteryError):
    code = "not_openable"
    message = "直接送礼不能提前开奖"


class NotOpenedYet(LotteryError):
    code = "not_opened"
    message = "尚未开奖"


class DatabaseUnavailable(LotteryError):
    """The database cannot be reached right now (it is being restarted, or the network is down)."""

    code = "database_unavailable"
    message = "服务暂时不可用，请稍后再试"


class UpstreamError(LotteryError):
    """WeChat (or another upstream) refused or did not answer."""

    code = "upstream_error"
    message = "微信服务暂时不可用，请稍后再试"


class ProductNotFound(LotteryError):
    code = "product_not_found"
    message = "商品不存在或已下架"


class CategoryNotFound(LotteryError):
    code = "category_not_found"
    message = "分类不存在"


class OutOfStock(LotteryError):
    code = "out_of_stock"
    message = "库存不足"


class OrderNotFound(LotteryError):
    code = "order_not_found"
    message = "订单不存在"


class OrderClosed(LotteryError):
    code = "order_closed"
    message = "订单已关闭，请重新下单"


class OrderInProgress(LotteryError):
    """The same order request is still being made by another request (it holds the stock)."""

    code = "order_in_progress"
    message = "订单正在处理中，请稍后再试"


class PaymentsNotConfigured(LotteryError):
    code = "payments_not_configured"
    message = "支付暂未开通"
