"""Run the prediction app with uvicorn until Ctrl-C or SIGTERM, which drain requests in flight.

On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (up to
``drain_seconds``), then the app answers what is still queued for the model and the process exits.
A model that fails to load stops the server, and :func:`serve` raises its error.
"""

from __future__ import annotations

from typing import Any, Callable

import uvicorn

from headstart.serving.app import create_app


def serve(load_model: Callable[[], Any], *, host: str = "127.0.0.1", port: int = 8080, drain_seconds: float = 30.0,
          **app_options) -> None:
    """Serve the model that ``load_model()`` returns on ``host:port`` until stopped.

    Args:
        load_model: called once in the background at startup; returns the predictor.
        host: the address to listen on (127.0.0.1: this machine only).
        port: the port.
        drain_seconds: how long a stopping server waits for the requests in flight.
        **app_options: :func:`~headstart.serving.app.create_app`'s options (batching, limits, ...).

    Raises:
        Exception: whatever ``load_model`` raised (a ModelError for a folder that is not a model).
    """
    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def stop(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    app = create_app(load_model, on_load_error=stop, **app_options)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=drain_seconds))
    server.run()
    if failures:
        raise failures[0]
