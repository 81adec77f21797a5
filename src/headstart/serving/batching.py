"""Micro-batching: requests that arrive together are answered by one model call.

One worker thread runs the model: a model that is not thread-safe (torch, a tokenizer) is only ever
called from that thread, and requests queue for it instead of competing for the cores. The worker
takes the oldest waiting request and every one waiting behind it, until the batch holds
``max_items`` items; only when none was waiting (an idle server) does it wait up to ``max_wait``
seconds for requests arriving together. Each request gets its own rows of the result. With
``max_wait=0`` and ``max_items=0`` (batching off) every request is a call of its own.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

_STOP = object()


@dataclass
class _Request:
    items: list
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Runs ``predict`` in one thread over the items of the requests waiting together.

    Args:
        predict: items -> an array with one row per item (a predictor's ``predict_proba``).
        max_items: the most items in one call; a request bigger than this is still one call.
            0 turns batching off.
        max_wait: seconds the worker waits for more requests after the first one; 0 takes only
            what is already waiting.
        on_batch: called after each call with (items in it, seconds it took), for the metrics.
    """

    def __init__(self, predict: Callable[[list], np.ndarray], *, max_items: int = 64, max_wait: float = 0.005,
                 on_batch: Callable[[int, float], None] | None = None):
        self._predict = predict
        self._max_items = max_items
        self._max_wait = max_wait if max_items > 0 else 0.0
        self._on_batch = on_batch or (lambda n, seconds: None)
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="headstart-model", daemon=True)

    def start(self) -> "MicroBatcher":
        """Start the worker thread; returns self."""
        self._thread.start()
        return self

    async def predict(self, items: Sequence) -> np.ndarray:
        """The rows of ``predict`` for ``items``, computed in a batch with whatever else is waiting."""
        request = _Request(list(items))
        self._queue.put(request)
        return await asyncio.wrap_future(request.future)

    def stop(self, timeout: float | None = None) -> None:
        """Answer every request already queued, then end the worker thread (waiting up to ``timeout``)."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _work(self) -> None:
        held = None  # a request that did not fit into the previous batch
        while True:
            first = held if held is not None else self._queue.get()
            # Under a backlog the requests that queued during the last call fill the batch already:
            # waiting for more only idles the model (20 clients on the SST-2 int8 export: 363 requests/s
            # with a 5 ms wait before every call, against 426 with no batching at all).
            wait = 0.0 if held is not None or not self._queue.empty() else self._max_wait
            held = None
            if first is _STOP:
                return
            batch, stopping = [first], False
            size, deadline = len(first.items), time.monotonic() + wait
            while size < self._max_items:
                try:
                    waiting = self._queue.get(timeout=max(deadline - time.monotonic(), 0)) \
                        if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if waiting is _STOP:
                    stopping = True
                    break
                if size + len(waiting.items) > self._max_items:
                    held = waiting
                    break
                batch.append(waiting)
                size += len(waiting.items)
            self._answer([r for r in batch if r.future.set_running_or_notify_cancel()])  # skip the cancelled
            if stopping:
                held = _STOP

    def _answer(self, batch: list[_Request]) -> None:
        if not batch:
            return
        items = [item for request in batch for item in request.items]
        began = time.perf_counter()
        try:
            rows = self._predict(items)
        except Exception as error:  # noqa: BLE001 - handed to the request(s) that caused it
            if len(batch) == 1:
                batch[0].future.set_exception(error)
            else:  # one bad request must not fail the others that shared its batch
                for request in batch:
                    self._answer([request])
            return
        self._on_batch(len(items), time.perf_counter() - began)
        start = 0
        for request in batch:
            request.future.set_result(rows[start:start + len(request.items)])
            start += len(request.items)
