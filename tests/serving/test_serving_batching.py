"""MicroBatcher: requests waiting together share one model call, each gets its own rows, a bad
request fails alone, batching off calls the model once per request, stop answers what is queued.

Which requests wait together is arranged, not timed: the model's first call blocks on an event
while the others queue behind it.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from headstart.serving.batching import MicroBatcher


class GatedModel:
    """predict_proba whose first call waits for ``release``; rows are [len(item), index in call]."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items):
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.first_started.set()
            assert self.release.wait(30)
        if any(item == "bad" for item in items):
            raise ValueError("a bad item")
        return np.array([[len(item), i] for i, item in enumerate(items)], dtype=float)


async def _run_behind_first(batcher: MicroBatcher, model: GatedModel, requests: list[list[str]]):
    """Send one request that blocks the model, queue ``requests`` behind it, release; all results."""
    loop = asyncio.get_running_loop()
    first = asyncio.ensure_future(batcher.predict(["first"]))
    await loop.run_in_executor(None, model.first_started.wait, 30)
    rest = [asyncio.ensure_future(batcher.predict(items)) for items in requests]
    await asyncio.sleep(0)  # let every request reach the queue
    model.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_requests_that_wait_together_are_one_call_and_each_gets_its_own_rows():
    model = GatedModel()
    batcher = MicroBatcher(model, max_items=64, max_wait=0).start()
    results = asyncio.run(_run_behind_first(batcher, model, [["a", "bb"], ["ccc"], ["dddd", "e", "ff"]]))
    batcher.stop(10)
    assert model.calls == [["first"], ["a", "bb", "ccc", "dddd", "e", "ff"]]
    assert [r[:, 0].tolist() for r in results] == [[5], [1, 2], [3], [4, 1, 2]]


def test_a_batch_holds_at_most_max_items():
    model = GatedModel()
    batcher = MicroBatcher(model, max_items=3, max_wait=0).start()
    results = asyncio.run(_run_behind_first(batcher, model, [["a", "b"], ["c"], ["d", "e"], ["f"]]))
    batcher.stop(10)
    assert model.calls == [["first"], ["a", "b", "c"], ["d", "e", "f"]]
    assert [r[:, 0].tolist() for r in results[1:]] == [[1, 1], [1], [1, 1], [1]]


def test_with_batching_off_each_request_is_its_own_call():
    model = GatedModel()
    batcher = MicroBatcher(model, max_items=0, max_wait=0.5).start()
    asyncio.run(_run_behind_first(batcher, model, [["a", "b"], ["c"]]))
    batcher.stop(10)
    assert model.calls == [["first"], ["a", "b"], ["c"]]


def test_a_failing_request_fails_alone_and_its_batch_mates_are_answered():
    model = GatedModel()
    batcher = MicroBatcher(model, max_items=64, max_wait=0).start()
    first, good, bad, other = asyncio.run(_run_behind_first(batcher, model, [["good"], ["bad"], ["xy"]]))
    batcher.stop(10)
    assert isinstance(bad, ValueError)
    assert good[:, 0].tolist() == [4] and other[:, 0].tolist() == [2]


def test_stop_answers_the_requests_already_queued():
    model = GatedModel()
    batcher = MicroBatcher(model, max_items=1, max_wait=0).start()

    async def scenario():
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(batcher.predict(["first"]))
        await loop.run_in_executor(None, model.first_started.wait, 30)
        queued = [asyncio.ensure_future(batcher.predict([text])) for text in ("a", "bb", "ccc")]
        await asyncio.sleep(0)
        stopping = loop.run_in_executor(None, batcher.stop, 30)  # queued behind the three
        model.release.set()
        await stopping
        return await asyncio.gather(first, *queued)

    results = asyncio.run(scenario())
    assert [r[0, 0] for r in results] == [5, 1, 2, 3]
    assert not batcher._thread.is_alive()


def test_under_a_backlog_the_worker_takes_what_waits_without_waiting_for_more():
    model = GatedModel()
    model.release.set()
    batcher = MicroBatcher(model, max_items=64, max_wait=600)  # an idle server would wait ten minutes

    async def scenario():
        queued = [asyncio.ensure_future(batcher.predict([text])) for text in ("a", "bb", "ccc")]
        await asyncio.sleep(0)  # all three in the queue before the worker starts: a backlog
        batcher.start()
        return await asyncio.wait_for(asyncio.gather(*queued), 30)

    results = asyncio.run(scenario())
    assert model.calls == [["a", "bb", "ccc"]]
    assert [r[0, 0] for r in results] == [1, 2, 3]
    batcher.stop(10)


@pytest.mark.parametrize("max_items", [0, 64])
def test_a_request_over_max_items_is_still_answered_whole(max_items):
    model = GatedModel()
    model.release.set()
    batcher = MicroBatcher(model, max_items=max_items, max_wait=0).start()
    rows = asyncio.run(batcher.predict([str(i) for i in range(100)]))
    batcher.stop(10)
    assert rows.shape == (100, 2) and rows[:, 1].tolist() == list(range(100))
