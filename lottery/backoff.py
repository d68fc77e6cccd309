"""How a background loop carries on through failures: it waits longer after each one (doubling
to a cap, so a lost database is not hammered), and logs once per incident, not once per round: a
warning when the database is unreachable (expected, no traceback), the traceback of anything
else once, and one line when the loop works again."""
import logging

from pymongo.errors import ConnectionFailure, PyMongoError

log = logging.getLogger(__name__)


def database_away(exc: BaseException | None) -> bool:
    """Whether an error means the database cannot be reached or did not answer within the time
    given (rather than a bug or a refusal): a lost connection, or a client-side operation timeout
    (`pymongo.timeout()`) running out while the database hangs."""
    return isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout)


class Backoff:
    def __init__(self, what: str, base: float = 0.5, cap: float = 10.0) -> None:
        self.what = what
        self.base = base
        self.cap = cap
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        """Record a failed round; the seconds to wait before the next."""
        self.failures += 1
        if self.failures == 1:
            if database_away(exc):
                log.warning("%s: the database is unreachable (%s); retrying with backoff", self.what,
                            type(exc).__name__)
            else:
                log.error("%s failed; retrying with backoff", self.what, exc_info=exc)
        return min(self.cap, self.base * 2 ** (self.failures - 1))

    def succeeded(self) -> None:
        """Record a round that worked: the incident, if any, is over."""
        if self.failures:
            log.info("%s: working again after %d failed rounds", self.what, self.failures)
            self.failures = 0
