"""Group commit: requests for the same thing that arrive while its previous step is in the
database wait for that step and then go to the database together, as one step.

A quiet server sends each request on its own at once (after one turn of the event loop, so
the requests of that moment go together). Under load a hot key's requests gather while its
step runs, so the number of steps follows the database's pace instead of the requests': a
step that costs about the same for one request or sixteen admits sixteen.

A step says when the next may start (`release`, once its contended write is done: the next
step's update then overlaps this one's remaining writes); at the latest, when it ends. Each
step runs in its first request's context (`contextvars`): under that request's database
budget (`pymongo.timeout`) and logged as it. A step's failure is every one of its requests'
failure. The same `distinct` value (a member) is never twice in one step: the second waits for
the next. Keys are independent: different gifts never wait for each other."""
import asyncio
import contextvars
from typing import Any, Awaitable, Callable, Generic, Hashable, NamedTuple, TypeVar

Item = TypeVar("Item")


class _Waiting(NamedTuple):
    item: Any
    distinct: Hashable
    answer: asyncio.Future
    context: contextvars.Context


class GroupCommit(Generic[Item]):
    """Steps of up to `max_batch` items per key, one key's steps one after another.

    `step(key, items, release)` returns one outcome per item, in order: a value, or an exception
    that item's requester gets raised; it calls `release()` when the key's next step may start."""

    def __init__(self, step: Callable[[Hashable, list[Item], Callable[[], None]], Awaitable[list[Any]]],
                 max_batch: int) -> None:
        self.step = step
        self.max_batch = max_batch
        self._queues: dict[Hashable, list[_Waiting]] = {}  # key -> requests waiting for its next step
        self._tasks: set[asyncio.Task] = set()  # steps under way (kept: the loop holds tasks weakly)
        self.steps = 0  # steps taken (for tests and benchmarks)

    async def submit(self, key: Hashable, item: Item, distinct: Hashable) -> Any:
        """This item's outcome, once the step that carries it is done."""
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        queue = self._queues.get(key)
        if queue is None:  # no step under way for this key: start one on the next turn
            queue = self._queues[key] = []
            loop.call_soon(self._next, key)
        queue.append(_Waiting(item, distinct, answer, contextvars.copy_context()))
        return await asyncio.shield(answer)  # a requester that gives up leaves its step alone

    def _next(self, key: Hashable) -> None:
        """Start the key's next step with what waits for it, or retire the key if nothing does."""
        queue = self._queues[key]
        if not queue:
            del self._queues[key]
            return
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        seen: set[Hashable] = set()
        for waiting in queue:
            if len(batch) < self.max_batch and waiting.distinct not in seen:
                batch.append(waiting)
                seen.add(waiting.distinct)
            else:
                rest.append(waiting)
        self._queues[key] = rest
        task = batch[0].context.run(asyncio.ensure_future, self._run(key, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: Hashable, batch: list[_Waiting]) -> None:
        self.steps += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                asyncio.get_running_loop().call_soon(self._next, key)

        try:
            outcomes = await self.step(key, [waiting.item for waiting in batch], release)
        except BaseException as exc:
            for waiting in batch:
                if isinstance(exc, asyncio.CancelledError):
                    waiting.answer.cancel()
                else:
                    _settle(waiting.answer, exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            release()
        for waiting, outcome in zip(batch, outcomes, strict=True):
            _settle(waiting.answer, outcome)


def _settle(answer: asyncio.Future, outcome: Any) -> None:
    if answer.done():
        return
    if isinstance(outcome, BaseException):
        answer.set_exception(outcome)
        answer.exception()  # read: a requester that gave up must not leave it unretrieved
    else:
        answer.set_result(outcome)
