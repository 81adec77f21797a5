"""``headstart serve`` as its own process: SIGTERM lets the requests in flight finish before the
process exits, and a folder that is not a model ends the command with one line and exit code 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]

# The tiny probe model behind a predict_proba that takes a second, so requests are still in flight
# when SIGTERM arrives; served by the same function as `headstart serve`, batching off.
SLOW_SERVER = """
import sys, time
import headstart
from headstart.serving.server import serve

class Slow:
    def __init__(self, model):
        self.model, self.classes = model, model.classes

    def predict_proba(self, items):
        time.sleep(1.0)
        return self.model.predict_proba(items)

serve(lambda: Slow(headstart.load(sys.argv[1])), port=int(sys.argv[2]), batching=False, drain_seconds=30)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def wait_ready(server: subprocess.Popen, url: str) -> None:
    for _ in range(600):  # bounded; nothing about the time is asserted
        assert server.poll() is None, server.communicate()[0]
        try:
            if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not become ready")


def in_progress(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5.0).text.splitlines():
        if line.startswith('headstart_requests_in_progress{path="/predict"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.server  # uvicorn runs inside the child process, where the marker's name lookup cannot see it
def test_sigterm_answers_the_requests_in_flight_then_exits(probe_run, tmp_path):
    _, folder = probe_run
    script = tmp_path / "slow_server.py"
    script.write_text(SLOW_SERVER)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, str(script), str(folder), str(port)], env=environment(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answers: list = []
    try:
        wait_ready(server, url)

        def send(text: str) -> None:
            try:
                answers.append(httpx.post(f"{url}/predict", json={"texts": [text]}, timeout=60.0).status_code)
            except httpx.HTTPError as error:
                answers.append(repr(error))

        clients = [threading.Thread(target=send, args=(f"the team won match {i}",)) for i in range(4)]
        for client in clients:
            client.start()
        for _ in range(300):  # until all four are in the server (one predicting, three queued)
            if in_progress(url) == 4:
                break
            time.sleep(0.05)
        assert in_progress(url) >= 3  # the model answers one a second: most are still in flight
        server.send_signal(signal.SIGTERM)
        for client in clients:
            client.join(60)
        output = server.communicate(timeout=60)[0]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert answers == [200] * 4, (answers, output)
    # uvicorn raises the signal again once drained, so the process ends as SIGTERM's default says
    assert server.returncode in (0, -signal.SIGTERM), output


@pytest.mark.server
def test_serve_on_a_folder_that_is_not_a_model_says_so_in_one_line(tmp_path):
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "headstart.cli", "serve", str(tmp_path), "--port", str(port)],
                          capture_output=True, text=True, timeout=120, env=environment())
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "not a headstart model folder" in errors[0], done.stderr
