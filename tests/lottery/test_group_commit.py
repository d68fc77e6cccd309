"""Group commit: what arrives together goes together, one step at a time per key."""
import asyncio
import contextvars

import pytest

from lottery.group_commit import GroupCommit

WHO = contextvars.ContextVar("who", default=None)


class Recorder:
    """A step that records its items (and the context it ran in) and answers each doubled;
    `gate` (when set) holds every step until it is opened, after releasing or not."""

    def __init__(self, release_early: bool = False) -> None:
        self.steps: list[list] = []
        self.contexts: list = []
        self.gate: asyncio.Event | None = None
        self.release_early = release_early
        self.running = 0
        self.most_running = 0

    async def step(self, key, items, release):
        self.steps.append(list(items))
        self.contexts.append(WHO.get())
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        if self.release_early:
            release()
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        self.running -= 1
        return [ValueError(item) if item == "bad" else item * 2 for item in items]


async def submit(commit: GroupCommit, key, item, who=None, distinct=None):
    WHO.set(who)
    return await commit.submit(key, item, item if distinct is None else distinct)


async def one_after_another(commit: GroupCommit, first: tuple, second: tuple) -> tuple:
    """Submit (key, item) `first`, let its step start, then `second`; both still under way."""
    answers = []
    for key, item in (first, second):
        answers.append(asyncio.ensure_future(submit(commit, key, item)))
        await asyncio.sleep(0.01)
    return tuple(answers)


@pytest.mark.gen_test
async def test_what_arrives_together_goes_in_one_step_and_each_gets_its_own_answer():
    recorder = Recorder()
    commit = GroupCommit(recorder.step, max_batch=16)
    answers = await asyncio.gather(*(submit(commit, "gift", n) for n in range(10)))
    assert answers == [n * 2 for n in range(10)]
    assert recorder.steps == [list(range(10))]


@pytest.mark.gen_test
async def test_what_arrives_during_a_step_waits_for_it_and_then_goes_together_in_steps_of_max_batch():
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    commit = GroupCommit(recorder.step, max_batch=4)
    first = asyncio.ensure_future(submit(commit, "gift", 0))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(submit(commit, "gift", n)) for n in range(1, 10)]
    await asyncio.sleep(0.01)
    assert recorder.steps == [[0]]  # the rest wait while the first step is under way
    recorder.gate.set()
    assert await asyncio.gather(first, *later) == [n * 2 for n in range(10)]
    assert recorder.steps == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert recorder.most_running == 1


@pytest.mark.gen_test
async def test_the_next_step_starts_once_a_step_releases_the_key():
    recorder = Recorder(release_early=True)
    recorder.gate = asyncio.Event()
    commit = GroupCommit(recorder.step, max_batch=4)
    first, second = await one_after_another(commit, ("gift", 0), ("gift", 1))
    assert recorder.steps == [[0], [1]] and recorder.most_running == 2
    recorder.gate.set()
    assert await asyncio.gather(first, second) == [0, 2]


@pytest.mark.gen_test
async def test_the_same_member_is_never_twice_in_one_step():
    recorder = Recorder()
    commit = GroupCommit(recorder.step, max_batch=16)
    answers = await asyncio.gather(*(submit(commit, "gift", n, distinct="same") for n in range(3)),
                                   submit(commit, "gift", 7, distinct="other"))
    assert answers == [0, 2, 4, 14]
    assert recorder.steps == [[0, 7], [1], [2]]


@pytest.mark.gen_test
async def test_keys_do_not_wait_for_each_other():
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    commit = GroupCommit(recorder.step, max_batch=16)
    held, other = await one_after_another(commit, ("gift-a", 1), ("gift-b", 2))
    assert recorder.steps == [[1], [2]]
    recorder.gate.set()
    assert await asyncio.gather(held, other) == [2, 4]


@pytest.mark.gen_test
async def test_an_items_error_is_its_own_and_a_steps_failure_is_everyones():
    recorder = Recorder()
    commit = GroupCommit(recorder.step, max_batch=16)
    answers = await asyncio.gather(submit(commit, "gift", "bad"), submit(commit, "gift", "ok"),
                                   return_exceptions=True)
    assert isinstance(answers[0], ValueError) and answers[1] == "okok"

    async def failing(key, items, release):
        raise RuntimeError("database away")

    commit = GroupCommit(failing, max_batch=16)
    answers = await asyncio.gather(*(submit(commit, "gift", n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(a, RuntimeError) for a in answers)
    with pytest.raises(RuntimeError):  # the key is not left stuck: the next request gets a step
        await asyncio.wait_for(submit(commit, "gift", 1), 1)


@pytest.mark.gen_test
async def test_a_step_runs_in_its_first_requests_context():
    recorder = Recorder()
    commit = GroupCommit(recorder.step, max_batch=16)
    await asyncio.gather(submit(commit, "gift", 1, who="first"), submit(commit, "gift", 2, who="second"))
    assert recorder.contexts == ["first"]
