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


class PassPhraseRequired(InvalidInput):
    code = "pass_phrase_required"
    message = "请输入口令"


class WrongPassPhrase(Forbidden):
    code = "wrong_pass_phrase"
    message = "口令不正确"


class TooManyGuesses(LotteryError):
    """Too many wrong pass phrases of late: the member is refused for a while (no guessing)."""

    code = "too_many_guesses"
    message = "口令错误次数过多，请稍后再试"


class GroupDataRequired(InvalidInput):
    code = "group_data_required"
    message = "这个礼物仅限指定群的成员参与，请从群聊中打开"


class NotInGroup(Forbidden):
    code = "not_in_group"
    message = "这个礼物仅限指定群的成员参与"


class GroupNotBound(LotteryError):
    code = "group_not_bound"
    message = "发起人还没有把礼物分享到群里"


class GroupAlreadyBound(LotteryError):
    code = "group_already_bound"
    message = "这个礼物已经绑定了另一个群"


class GroupDataStale(InvalidInput):
    code = "group_data_stale"
    message = "群信息已过期，请从群聊中重新打开"


class NoSessionKey(LoginExpired):
    """Data encrypted with the member's session key, for a member without one (not signed in
    with wx.login)."""

    code = "no_session_key"
    message = "请先用微信登录"


class ContentRisky(InvalidInput):
    """WeChat's content check found the text risky: it is refused, nothing is stored."""

    code = "content_risky"
    message = "内容含有违规信息，请修改后再试"


class RiskyMember(Forbidden):
    """WeChat's user risk rank is at or above the configured limit."""

    code = "risk_refused"
    message = "当前账号存在风险，暂时无法参与"


class NotOpenable(LotteryError):
    code = "not_openable"
    message = "直接送礼不能提前开奖"


class NotOpenedYet(LotteryError):
    code = "not_opened"
    message = "尚未开奖"


class DatabaseUnavailable(LotteryError):
    """The database cannot be reached right now (it is being restarted, the network is down, or
    it does not answer within the request's time)."""

    code = "database_unavailable"
    message = "服务暂时不可用，请稍后再试"


class JoinOutcomeUnknown(DatabaseUnavailable):
    """The database stopped answering after a join's write was sent: it may or may not have
    taken effect. Trying again is safe (a member joins once): it answers the join, or that the
    member already joined."""

    code = "join_outcome_unknown"
    message = "网络繁忙，暂时无法确认是否参与成功，请稍后刷新查看"


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


class IdempotencyKeyReused(LotteryError):
    """The client's Idempotency-Key names an order made from a different request body."""

    code = "idempotency_key_reused"
    message = "这个 Idempotency-Key 已用于另一个不同的下单请求，请换一个新的 Key"


class TooManyUnpaidOrders(LotteryError):
    """The buyer already holds as many unpaid orders (or units in them) as one member may."""

    code = "too_many_unpaid_orders"
    message = "你有太多未支付的订单，请先支付或等待过期"


class PaymentsNotConfigured(LotteryError):
    code = "payments_not_configured"
    message = "支付暂未开通"


class NotWinner(LotteryError):
    code = "not_winner"
    message = "你没有抽中这个礼物"


class ClaimLocked(LotteryError):
    code = "claim_locked"
    message = "礼物已发货，地址不能再修改"


class ClaimExpired(LotteryError):
    code = "claim_expired"
    message = "领奖已过期"


class ClaimNotFound(LotteryError):
    code = "claim_not_found"
    message = "领奖记录不存在"


class WrongClaimState(LotteryError):
    code = "wrong_claim_state"
    message = "领奖记录的状态不允许这个操作"


class PaymentFailure(Exception):
    """WeChat Pay refused or did not answer (notify/wechatpay.WeChatPayError is one)."""

    status: int | None
    code: str | None
    retryable: bool


class PaymentMismatch(LotteryError):
    """A verified payment that does not match its order (merchant, app or amount)."""

    code = "payment_mismatch"
    message = "支付信息与订单不符"


class RefundMismatch(LotteryError):
    """A verified refund notify (or query answer) that names no refund of ours, or does not match
    it (order number or amount)."""

    code = "refund_mismatch"
    message = "退款信息与记录不符"


class DecryptionFailed(InvalidInput):
    code = "decryption_failed"
    message = "用户数据解密失败，请重新授权"


class WrongAppid(InvalidInput):
    code = "wrong_appid"
    message = "用户数据不属于本小程序"


class ReconciliationNotFound(LotteryError):
    code = "reconciliation_not_found"
    message = "该日尚无对账报告"


class ReconciliationBusy(LotteryError):
    code = "reconciliation_running"
    message = "该日对账正在进行，请稍后再试"


class BillNotReady(LotteryError):
    code = "bill_not_ready"
    message = "微信支付账单尚未生成，请稍后再试"


class BackupUnsupported(LotteryError):
    code = "backup_unsupported"
    message = "这个数据库不支持在线备份：MongoDB 请用 mongodump 或云服务的快照"


class UpstreamFailure(Exception):
    """Raised by a session resolver when WeChat refuses or does not answer."""


class ConfigError(ValueError):
    """A setting is unusable (notification templates, WeChat Pay); the message names it, never a
    secret's value."""


class SignInRefused(LotteryError):
    """A console sign-in with a wrong name, password or code: one message for all, so a
    stranger cannot tell which part was wrong or whether the account exists."""

    code = "sign_in_refused"
    message = "账号、密码或动态码错误"


class TooManySignIns(LotteryError):
    code = "too_many_sign_ins"
    message = "尝试次数过多，请稍后再试"


class OperatorExists(LotteryError):
    code = "operator_exists"
    message = "该账号名已存在"


class OperatorNotFound(LotteryError):
    code = "operator_not_found"
    message = "账号不存在"
