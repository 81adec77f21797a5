"""Load test of `headstart serve`: simulated clients posting texts on loopback, batching on and off.

For each mode (micro-batching on, then off, in one run) a fresh server process serves the model;
``--clients`` (20) threads, each with its own keep-alive connection, post ``{"texts": [...]}`` with
``--items`` texts each, back to back, for ``--seconds`` (60) after a ``--warmup`` (5 s, not
counted). Reported per mode: requests/s and items/s, p50/p99/mean latency as the client saw it,
errors (any answer but 200, or no answer; target 0), the server's RSS after the warm-up and at the
end (target: within 10%) and its peak, the mean items per model call (from ``/metrics``), and
whether SIGTERM with at least half of ``--clients`` requests in flight answered them all and ended
the process.

The model is any folder `headstart serve` takes (a model folder, or an exported ONNX folder); texts
come from SST-2's dev split where ../shared/data has it, else from ``--texts`` (a CSV with a text
column). Traffic goes to 127.0.0.1 only; every phase has a deadline and the server is killed in
``finally``.

    .venv/bin/python benchmarks/serve_load.py runs/sst2-int8                       # 20 clients, 60 s a mode
    .venv/bin/python benchmarks/serve_load.py runs/tickets --seconds 10 --texts examples/new_tickets.csv \\
        --tag short                                                                # a short run
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_data import sst2  # noqa: E402
from common import THREADS, print_table, print_targets, target, write_results  # noqa: E402

from headstart.serving.limits import Limits  # noqa: E402

HOST = "127.0.0.1"  # loopback only: this script never sends traffic anywhere else
DRAIN_ITEMS = Limits().max_items  # texts in each request of the SIGTERM check: the server's default most


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def read_texts(path: Path | None) -> tuple[list[str], str]:
    """(texts to send, where they came from): SST-2 dev where available, else ``path``'s text column."""
    if path is None:
        try:
            return sst2("dev")[0], "SST-2 dev"
        except FileNotFoundError as error:
            raise SystemExit(f"{error}; or give --texts FILE.csv") from None
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row.get("text", "").strip()], str(path)


class Server:
    """`headstart serve` as a child process: start, wait until ready, sample RSS, read /metrics, stop."""

    def __init__(self, model_dir: Path, *, batching: bool, threads: int, log: Path):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.args = [sys.executable, "-m", "headstart.cli", "--quiet", "serve", str(model_dir), "--host", HOST,
                     "--port", str(self.port)] + ([] if batching else ["--no-batching"])
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HEADSTART_QUIET": "1",
                    "TOKENIZERS_PARALLELISM": "false"}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 600.0) -> float:
        """Start and wait for GET /ready; the seconds that took."""
        import httpx

        began = time.perf_counter()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2.0).status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s; see {self.log}")

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 1024 ** 2

    def metric(self, name: str) -> float | None:
        """The value of the sample ``name`` (with its labels) in /metrics; None when absent."""
        import httpx

        for line in httpx.get(f"{self.url}/metrics", timeout=10.0).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def mean_batch_items(self) -> float | None:
        total, count = self.metric("headstart_batch_items_sum"), self.metric("headstart_batch_items_count")
        return total / count if count else None

    def terminate(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then the exit code (None: it had to be killed)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def client(url: str, texts: list[str], items: int, seed: int, stop_at: float, count_from: float,
           results: list) -> None:
    """Post back to back until ``stop_at``; (start time, latency, ok) of each request go to ``results``."""
    import httpx

    rng = np.random.default_rng(seed)
    with httpx.Client(timeout=60.0) as http:
        while time.perf_counter() < stop_at:
            batch = [texts[i] for i in rng.integers(0, len(texts), size=items)]
            began = time.perf_counter()
            try:
                ok = http.post(f"{url}/predict", json={"texts": batch}).status_code == 200
            except httpx.HTTPError:
                ok = False
            if began >= count_from:
                results.append((began, time.perf_counter() - began, ok))


def drain_check(server: Server, texts: list[str], clients: int) -> dict:
    """SIGTERM once half of ``clients`` requests are in the server (its in-progress gauge says so, or
    10 s passed): how many were in flight then, how many were answered 200, and the exit code.

    Each request carries the server's default most items (``Limits().max_items``), so that they are still in flight when
    the signal comes: requests of 8 texts were all answered before the gauge was first read (12-03's
    results show 0 in flight, a drain of nothing).
    """
    import httpx

    answers: list = []

    def send(i: int) -> None:
        batch = [texts[(i * DRAIN_ITEMS + j) % len(texts)] for j in range(DRAIN_ITEMS)]
        try:
            answers.append(httpx.post(f"{server.url}/predict", json={"texts": batch}, timeout=60.0).status_code)
        except httpx.HTTPError as error:
            answers.append(type(error).__name__)

    senders = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(clients)]
    for sender in senders:
        sender.start()
    in_flight, deadline = 0.0, time.perf_counter() + 10
    while in_flight < clients / 2 and time.perf_counter() < deadline:
        in_flight = server.metric('headstart_requests_in_progress{path="/predict"}') or 0.0
        time.sleep(0.02)
    code = server.terminate()
    for sender in senders:
        sender.join(60)
    return {"sent": clients, "in_flight_at_sigterm": in_flight, "answered_200": answers.count(200),
            "others": [a for a in answers if a != 200], "exit_code": code}


def run_mode(model_dir: Path, texts: list[str], *, batching: bool, args, log: Path) -> dict:
    server = Server(model_dir, batching=batching, threads=args.threads, log=log)
    try:
        ready_seconds = server.start()
        rss_ready = server.rss_mb()
        results: list = []
        now = time.perf_counter()
        count_from, stop_at = now + args.warmup, now + args.warmup + args.seconds
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(server.url, texts, args.items, seed, stop_at, count_from, results))
                   for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(args.warmup)
        rss = [server.rss_mb()]
        while time.perf_counter() < stop_at:
            time.sleep(min(1.0, max(stop_at - time.perf_counter(), 0)))
            rss.append(server.rss_mb())
        for thread in threads:
            thread.join(120)
        mean_batch = server.mean_batch_items()
        drain = drain_check(server, texts, args.clients)
    finally:
        server.kill()
    latencies = np.array([latency for _, latency, _ in results]) * 1000
    errors = sum(1 for *_, ok in results if not ok)
    return {"mode": "batching on" if batching else "batching off", "requests": len(results),
            "requests_per_s": len(results) / args.seconds, "items_per_s": len(results) * args.items / args.seconds,
            "p50_ms": float(np.percentile(latencies, 50)) if len(results) else None,
            "p99_ms": float(np.percentile(latencies, 99)) if len(results) else None,
            "mean_ms": float(latencies.mean()) if len(results) else None, "errors": errors,
            "rss_ready_mb": rss_ready, "rss_start_mb": rss[0], "rss_end_mb": rss[-1], "rss_peak_mb": max(rss),
            "rss_growth": rss[-1] / rss[0] - 1, "mean_items_per_model_call": mean_batch,
            "ready_seconds": ready_seconds, "drain": drain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path, help="a folder `headstart serve` takes")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per mode")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--items", type=int, default=1, help="texts per request")
    parser.add_argument("--threads", type=int, default=THREADS, help="the server's OMP_NUM_THREADS")
    parser.add_argument("--texts", type=Path, default=None, help="CSV with a text column (default: SST-2 dev)")
    parser.add_argument("--modes", default="on,off", help="batching modes to run, e.g. on,off or off")
    parser.add_argument("--tag", default="", help="suffix of the results file, e.g. short")
    args = parser.parse_args()
    texts, source = read_texts(args.texts)
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load-{os.getpid()}.log"
    rows = []
    for mode in args.modes.split(","):
        rows.append(run_mode(args.model_dir, texts, batching=mode.strip() == "on", args=args, log=log))
        row = rows[-1]
        print(f"{row['mode']}: {row['requests_per_s']:.1f} requests/s, p50 {row['p50_ms']:.1f} ms, "
              f"p99 {row['p99_ms']:.1f} ms, {row['errors']} errors", flush=True)
    print_table(rows, ["mode", "requests", "requests_per_s", "items_per_s", "p50_ms", "p99_ms", "errors",
                       "rss_start_mb", "rss_end_mb", "rss_growth", "mean_items_per_model_call"],
                title=f"{args.clients} clients x {args.seconds:.0f} s on {args.model_dir} ({source})")
    targets = []
    for row in rows:
        targets += [target(f"{row['mode']}: errors", row["errors"], "<=", 0),
                    target(f"{row['mode']}: RSS growth start to end", row["rss_growth"], "<=", 0.10),
                    target(f"{row['mode']}: requests in flight at SIGTERM", row["drain"]["in_flight_at_sigterm"], ">=", 1),
                    target(f"{row['mode']}: SIGTERM answered the requests in flight",
                           row["drain"]["answered_200"], ">=", row["drain"]["sent"])]
    print_targets(targets)
    name = "serve_load" + (f"-{args.tag}" if args.tag else "")
    path = write_results(name, {"model_dir": str(args.model_dir), "texts": source,
                                "settings": {key: value for key, value in vars(args).items() if key != "model_dir"},
                                "rows": rows, "targets": targets, "server_log": str(log)})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
