"""Long jobs a request starts on the server (the review scan): one at a time, each with a time limit.

    jobs = LongJobs(time_limit=60)
    result = jobs.run("the review scan", review.scan, project)   # or a 503 naming the limit

The job runs in a daemon thread of its own and the request waits for it at most ``time_limit``
seconds: a job that runs longer answers 503 instead of holding the request (and the server's
shutdown) forever. A thread cannot be killed, so the late job runs on to its end; until it does,
another request for a long job gets 503 "busy" rather than a second copy beside it. Being a daemon
thread, a late job never keeps a stopping server alive.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from starlette.exceptions import HTTPException

DEFAULT_TIME_LIMIT = 60.0
RETRY_AFTER_SECONDS = 10


class LongJobs:
    """Runs long jobs one at a time, each within ``time_limit`` seconds, else answers 503."""

    def __init__(self, *, time_limit: float = DEFAULT_TIME_LIMIT):
        self.time_limit = time_limit
        self._running: str | None = None  # the job that runs now (possibly one past its limit)
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def run(self, name: str, job: Callable[..., Any], *args: Any) -> Any:
        """``job(*args)``'s result; its exception is raised here. HTTPException 503 when another long
        job runs, or when this one passes the time limit (it then finishes unseen)."""
        with self._lock:
            if self._running is not None:
                raise HTTPException(503, f"busy: {self._running} is running; try again in a moment",
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._running = name
            self._idle.clear()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = job(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting request
                outcome["error"] = error
            finally:
                with self._lock:
                    self._running = None
                    self._idle.set()

        worker = threading.Thread(target=work, name=f"headstart-job: {name}", daemon=True)
        worker.start()
        worker.join(self.time_limit)
        if worker.is_alive():
            raise HTTPException(503, f"{name} took longer than its limit of {self.time_limit:g} s and was left "
                                     "to finish in the background; try again later",
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no long job runs (a late one included); False when ``timeout`` passed first."""
        return self._idle.wait(timeout)
