"""Which HTTP status each domain error means (the domain knows nothing of HTTP)."""
from lottery.errors import (AlreadyJoined, GroupAlreadyBound, GroupNotBound, TooManyGuesses, BackupUnsupported, BillNotReady, CategoryNotFound, ClaimExpired,
                            ClaimLocked, ClaimNotFound, DatabaseUnavailable, Forbidden, GiftClosed, GiftFull,
                            GiftNotFound, IdempotencyKeyReused, InvalidInput, LoginExpired, LotteryError,
                            NotOpenable, NotOpenedYet, NotWinner, OperatorExists, OperatorNotFound, OrderClosed,
                            OrderInProgress, OrderNotFound, OutOfStock, OwnGift, PaymentMismatch,
                            PaymentsNotConfigured, ProductNotFound, ReconciliationBusy, ReconciliationNotFound,
                            SignInRefused, TooManySignIns, TooManyUnpaidOrders, UpstreamError, WrongClaimState)


class BodyTooLarge(InvalidInput):
    """A JSON body over the handlers' limit."""

    code = "body_too_large"
    message = "请求体过大"


# The most specific class in an error's ancestry decides.
STATUS: dict[type[LotteryError], int] = {
    LotteryError: 400,
    InvalidInput: 400,
    BodyTooLarge: 413,
    LoginExpired: 401,
    Forbidden: 403,
    OwnGift: 403,
    GiftNotFound: 404,
    AlreadyJoined: 409,
    GiftFull: 409,
    NotOpenable: 409,
    NotOpenedYet: 409,
    GiftClosed: 410,
    UpstreamError: 502,
    DatabaseUnavailable: 503,
    ProductNotFound: 404,
    CategoryNotFound: 404,
    OrderNotFound: 404,
    OutOfStock: 409,
    OrderClosed: 409,
    OrderInProgress: 409,
    IdempotencyKeyReused: 409,
    TooManyUnpaidOrders: 409,
    PaymentsNotConfigured: 503,
    PaymentMismatch: 400,
    NotWinner: 403,
    ClaimLocked: 409,
    ClaimExpired: 410,
    ClaimNotFound: 404,
    WrongClaimState: 409,
    BackupUnsupported: 501,
    ReconciliationNotFound: 404,
    ReconciliationBusy: 409,
    BillNotReady: 409,
    SignInRefused: 401,
    TooManySignIns: 429,
    OperatorExists: 409,
    OperatorNotFound: 404,
    TooManyGuesses: 429,
    GroupNotBound: 409,
    GroupAlreadyBound: 409,
}


def status_of(error: LotteryError) -> int:
    """The v1 API's status for a domain error."""
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)
