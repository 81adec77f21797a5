"""Load test of the labeling web API: simulated annotators posting labels over HTTP, on loopback only.

For each backend (SQLite, then PostgreSQL on a throwaway cluster from tests/labeling/pgcluster.py):

1. **steady**: ``--annotators`` (20) threads, each with its own token, fetch batches
   (``GET /api/next``) and post labels (``POST /api/labels``) for ``--seconds`` (60), with
   ``--think-ms`` between labels; the server (uvicorn, its own process) has its RSS sampled every
   second. Reported: labels acknowledged, lost (acknowledged but not in the store), duplicated (an
   annotator's label stored twice for an item, or two current labels in one slot), conflicts
   (409), p50/p99 latency of each request as the client saw it and as the server spent it
   (``Server-Timing``), RSS over time, and the RSS of a fresh server on the final database (what
   the data alone costs); a 21st annotator labels in headless Chromium and the page's own
   keydown-to-next-item times are kept.
2. **kill**: the same load for ``--kill-seconds`` (20); half-way the server gets SIGKILL and is
   started again on the same port. Clients retry what was not answered. Nothing acknowledged may
   be lost, nothing may be stored twice.

Everything is bounded: a deadline on every phase, ``--max-labels`` in all, daemon client threads,
and the server processes are killed in ``finally``. Traffic goes to 127.0.0.1 only.

    .venv/bin/python benchmarks/label_load.py                  # both backends, 60 s each (+ kill phase)
    .venv/bin/python benchmarks/label_load.py --quick          # 10 s, 5 annotators: a smoke run
    .venv/bin/python benchmarks/label_load.py --serve ...      # (internal) the server process
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the throwaway PostgreSQL cluster is a test helper, kept with the labeling tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "labeling"))
from common import print_table, print_targets, target, write_results  # noqa: E402

HOST = "127.0.0.1"  # loopback only: this script never sends traffic anywhere else
CHROMIUM = Path("/usr/bin/chromium")


# --------------------------------------------------------------------------- the server process
def serve(db: str, features: str, port: int) -> None:
    """Run the app over the store with injected features (no backbone), as its own process."""
    import uvicorn

    from headstart.labeling import LabelingProject, Store
    from headstart.labeling.web import create_app

    project = LabelingProject(Store.open(db), features=np.load(features))
    uvicorn.run(create_app(project), host=HOST, port=port, log_level="warning", access_log=False)


class Server:
    """The server as a child process: start, wait until it answers, sample its RSS, SIGKILL it."""

    def __init__(self, db: str, features: Path, port: int, log: Path):
        self.args = [sys.executable, __file__, "--serve", "--db", db, "--features", str(features), "--port", str(port)]
        self.url = f"http://{HOST}:{port}"
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> float:
        import httpx

        began = time.perf_counter()
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/openapi.json", timeout=1.0).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the server did not answer in {timeout} s; see {self.log}")

    def rss_mb(self) -> float | None:
        import psutil

        try:
            return psutil.Process(self.process.pid).memory_info().rss / 2**20
        except (psutil.Error, AttributeError):
            return None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


# --------------------------------------------------------------------------- the annotators
class Tally:
    """What the clients saw, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[tuple[str, str], str] = {}  # (item, annotator) -> label, answered 200
        self.post_ms: list[float] = []
        self.post_server_ms: list[float] = []
        self.post_at: list[float] = []  # when each acknowledged label came back (monotonic seconds)
        self.next_ms: list[float] = []
        self.next_server_ms: list[float] = []
        self.statuses: Counter = Counter()
        self.retries = 0

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def _server_ms(response) -> float | None:
    timing = response.headers.get("server-timing", "")
    return float(timing.split("dur=")[1]) if "dur=" in timing else None


def annotator(name: str, token: str, classes: list[str], url: str, tally: Tally, stop: threading.Event,
              deadline: float, max_labels: int, think: float, seed: int) -> None:
    """Fetch a batch, label it (a random class), repeat. A request that gets no answer (the server is
    down) is sent again until it is answered: it was never acknowledged, so it may or may not be stored."""
    import httpx

    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:

        def send(method: str, path: str, **options):
            while not stop.is_set() and time.monotonic() < deadline + 30:
                began = time.perf_counter()
                try:
                    response = client.request(method, path, **options)
                except httpx.TransportError:
                    with tally.lock:
                        tally.retries += 1
                    time.sleep(0.2)
                    continue
                return response, (time.perf_counter() - began) * 1000
            return None, None

        restart = True
        while not stop.is_set() and time.monotonic() < deadline:
            response, ms = send("GET", f"/api/next?n=10&restart={str(restart).lower()}")
            restart = False
            if response is None:
                return
            with tally.lock:
                tally.next_ms.append(ms)
                tally.next_server_ms.append(_server_ms(response))
                tally.statuses[f"next {response.status_code}"] += 1
            items = response.json().get("items", []) if response.status_code == 200 else []
            if not items:
                time.sleep(0.5)
                restart = True
            for item in items:
                if stop.is_set() or time.monotonic() >= deadline or tally.count() >= max_labels:
                    return
                label = classes[int(rng.integers(len(classes)))]
                response, ms = send("POST", "/api/labels", json={"id": item["id"], "label": label})
                if response is None:
                    return
                with tally.lock:
                    tally.statuses[f"label {response.status_code}"] += 1
                    if response.status_code == 200:
                        tally.acked[(item["id"], name)] = label
                        tally.post_ms.append(ms)
                        tally.post_at.append(time.monotonic())
                        tally.post_server_ms.append(_server_ms(response))
                time.sleep(think)


def browser_probe(url: str, token: str, out: dict, delay: float) -> None:
    """One more annotator, in headless Chromium, labels ``out["labels"]`` items with the keyboard while the
    load runs; ``out["ms"]`` gets the page's own keydown-to-next-item-painted times."""
    if not CHROMIUM.exists():
        out["note"] = f"not measured: no browser at {CHROMIUM}"
        return
    from playwright.sync_api import sync_playwright

    time.sleep(delay)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.goto(f"{url}/login")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#item-id:has-text('item ')", timeout=30_000)
            for _ in range(out["labels"]):
                shown = page.inner_text("#item-id")
                page.keyboard.press("1")
                page.wait_for_function("shown => document.getElementById('item-id').textContent !== shown",
                                       arg=shown, timeout=30_000)
            # a function, not an expression: the page's Content-Security-Policy refuses Playwright's eval
            page.wait_for_function(f"() => window.headstartTimings.length >= {out['labels']}", timeout=30_000)
            out["ms"] = [round(ms, 1) for ms in page.evaluate("window.headstartTimings")]
            browser.close()
    except Exception as error:  # noqa: BLE001 - the probe reports, the load test goes on
        out["note"] = f"browser probe failed: {error}"


# --------------------------------------------------------------------------- one run
def make_project(db: str, folder: Path, n_items: int, n_annotators: int, seed: int = 0):
    """A text pool of ``n_items`` with 3 classes, blob features saved beside it, a probe trained on
    30 imported labels (so every item has a stored prediction), and one user per annotator."""
    from headstart.labeling import LabelingProject, init_project
    from headstart.labeling.retrain import retrain_probe
    from headstart.labeling.users import add_user

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    centres = rng.normal(0, 3, size=(3, 16))
    features = (centres[truth] + rng.normal(0, 1.0, size=(n_items, 16))).astype(np.float32)
    np.save(folder / "features.npy", features)
    pool = folder / "pool.csv"
    with open(pool, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i in range(n_items):
            writer.writerow([f"t{i}", f"ticket {i}: the printer on floor {i % 7} says error {i % 13}",
                             f"c{truth[i]}" if i < 30 else ""])
    project = init_project(pool, labels="c0,c1,c2", db=db, backbone="minilm-l6")
    project = LabelingProject(project.store, features=features)
    retrain_probe(project)
    tokens = {f"annotator{k:02d}": add_user(project.store, f"annotator{k:02d}", "annotator")
              for k in range(n_annotators)}
    browser_token = add_user(project.store, "browser", "annotator")
    project.store.close()
    return tokens, browser_token, folder / "features.npy"


def percentile(values, q):
    values = [v for v in values if v is not None]
    return round(float(np.percentile(values, q)), 2) if values else None


def run_load(server: Server, tokens: dict, seconds: float, max_labels: int, think: float,
             kill_at: float | None = None) -> dict:
    """Drive the annotators for ``seconds``; with ``kill_at`` the server is SIGKILLed that many seconds
    in and started again. Returns what the clients saw and the server's RSS over time."""
    tally, stop = Tally(), threading.Event()
    began = time.monotonic()
    deadline = began + seconds
    threads = [threading.Thread(target=annotator, args=(name, token, ["c0", "c1", "c2"], server.url, tally, stop,
                                                        deadline, max_labels, think, k), daemon=True)
               for k, (name, token) in enumerate(tokens.items())]
    for thread in threads:
        thread.start()
    rss, killed = [], None
    while time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(1.0)
        rss.append((round(time.monotonic() - began, 1), server.rss_mb()))
        if kill_at is not None and killed is None and time.monotonic() - began >= kill_at:
            acked_before = tally.count()
            server.kill()
            killed = {"at_s": round(time.monotonic() - began, 1), "acknowledged_before": acked_before,
                      "restart_s": round(server.start(), 2)}
    stop_at = time.monotonic() + 35
    for thread in threads:
        thread.join(max(0.0, stop_at - time.monotonic()))
    stop.set()
    elapsed = time.monotonic() - began
    return {"tally": tally, "rss": rss, "began": began, "killed": killed, "elapsed_s": round(elapsed, 1),
            "threads_still_running": sum(t.is_alive() for t in threads)}


def check_store(db: str, acked: dict, annotators) -> dict:
    """Lost: acknowledged labels not current in the store. Duplicated: an (item, annotator) with more
    than one stored label row, or a slot with more than one current label."""
    from headstart.labeling import Store

    store = Store.open(db)
    current = {(r.item, r.annotator): r.label for r in store.current_labels(("person",)) if r.annotator in annotators}
    rows = Counter((record.item, record.annotator) for record, _ in store.label_history() if record.source == "person")
    slots = Counter(r.item for r in store.current_labels())
    store.close()
    lost = [key for key, label in acked.items() if current.get(key) != label]
    return {"stored": len(current), "lost": len(lost), "lost_examples": lost[:5],
            "duplicated": sum(n - 1 for n in rows.values() if n > 1) + sum(n - 1 for n in slots.values() if n > 1),
            "stored_not_acknowledged": len(set(current) - set(acked))}


def _by_window(tally: Tally, began: float, window: float = 10.0) -> list[dict]:
    """Client-side label p50/p99 in each 10 s of the run: a slow start, a kill or a drift shows here."""
    at = np.asarray(tally.post_at) - began
    ms = np.asarray(tally.post_ms)
    return [{"from_s": start, "labels": int(mask.sum()), "p50_ms": percentile(ms[mask], 50),
             "p99_ms": percentile(ms[mask], 99)}
            for start in range(0, int(at.max()) + 1 if len(at) else 0, int(window))
            if (mask := (at >= start) & (at < start + window)).any()]


def summary(name: str, run: dict, check: dict) -> dict:
    tally = run["tally"]
    series = [mb for _, mb in run["rss"] if mb is not None]
    warm = series[min(len(series) - 1, 5):] if series else []  # after the first batches are served
    return {"backend": name, "seconds": run["elapsed_s"], "annotators": None, "acknowledged": len(tally.acked),
            "labels_per_s": round(len(tally.acked) / max(run["elapsed_s"], 1e-9), 1),
            **{k: check[k] for k in ("stored", "lost", "duplicated", "stored_not_acknowledged")},
            "conflicts_409": tally.statuses.get("label 409", 0), "retries": tally.retries,
            "statuses": dict(tally.statuses),
            "label_p50_ms": percentile(tally.post_ms, 50), "label_p99_ms": percentile(tally.post_ms, 99),
            "label_server_p50_ms": percentile(tally.post_server_ms, 50),
            "label_server_p99_ms": percentile(tally.post_server_ms, 99),
            "label_p99_ms_by_10s": _by_window(tally, run["began"]),
            "next_p50_ms": percentile(tally.next_ms, 50), "next_p99_ms": percentile(tally.next_ms, 99),
            "next_server_p50_ms": percentile(tally.next_server_ms, 50),
            "next_server_p99_ms": percentile(tally.next_server_ms, 99),
            "rss_start_mb": round(warm[0], 1) if warm else None, "rss_end_mb": round(series[-1], 1) if series else None,
            "rss_max_mb": round(max(series), 1) if series else None, "rss_series": run["rss"],
            "killed": run["killed"], "threads_still_running": run["threads_still_running"]}


def fresh_rss(db: str, features: Path, tokens: dict, folder: Path, args) -> float | None:
    """The RSS of a new server on the database as the run left it, after 10 s of the same load: what
    the data alone costs. An end RSS close to it means the growth came with the data, not a leak."""
    server = Server(db, features, _free_port(), folder / "server-fresh.log")
    try:
        server.start()
        run = run_load(server, tokens, 10.0, args.max_labels, args.think_ms / 1000)
    finally:
        server.kill()
    series = [mb for _, mb in run["rss"] if mb is not None]
    return round(series[-1], 1) if series else None


def bench_backend(name: str, db_for, args, work: Path) -> list[dict]:
    rows = []
    for phase, seconds, kill_at in (("steady", args.seconds, None),
                                    ("kill", args.kill_seconds, args.kill_seconds / 2)):
        folder = work / f"{name}-{phase}"
        folder.mkdir()
        db = db_for(folder)
        tokens, browser_token, features = make_project(db, folder, args.items, args.annotators)
        server = Server(db, features, _free_port(), folder / "server.log")
        browser: dict = {}
        probe = threading.Thread(target=browser_probe, args=(server.url, browser_token, browser, seconds / 4),
                                 daemon=True)
        try:
            server.start()
            if phase == "steady" and args.browser_labels:
                browser["labels"] = args.browser_labels
                probe.start()
            run = run_load(server, tokens, seconds, args.max_labels, args.think_ms / 1000, kill_at)
            if probe.is_alive():
                probe.join(60)
        finally:
            server.kill()
        row = summary(name, run, check_store(db, run["tally"].acked, set(tokens)))
        row.update(phase=phase, annotators=args.annotators, browser=browser or None,
                   browser_next_item_p50_ms=percentile(browser.get("ms", []), 50),
                   browser_next_item_p99_ms=percentile(browser.get("ms", []), 99))
        if phase == "steady":
            row["rss_fresh_same_db_mb"] = fresh_rss(db, features, tokens, folder, args)
        rows.append(row)
        print(f"{name} {phase}: {row['acknowledged']} acknowledged, {row['lost']} lost, {row['duplicated']} "
              f"duplicated, label p50/p99 {row['label_p50_ms']}/{row['label_p99_ms']} ms, RSS "
              f"{row['rss_start_mb']} -> {row['rss_end_mb']} MB", flush=True)
    return rows


def _free_port() -> int:
    from pgcluster import free_port

    return free_port()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-seconds", type=float, default=20.0)
    parser.add_argument("--think-ms", type=float, default=200.0, help="pause of each annotator after a label")
    parser.add_argument("--items", type=int, default=12_000)
    parser.add_argument("--max-labels", type=int, default=20_000)
    parser.add_argument("--browser-labels", type=int, default=30,
                        help="items a 21st annotator labels in headless Chromium during the steady phase (0: none)")
    parser.add_argument("--tag", default="", help="added to the results file's name (label_load-TAG-DATE.json)")
    parser.add_argument("--quick", action="store_true", help="5 annotators, 10 s, 2,000 items")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--features", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.db, args.features, args.port)
        return
    if args.quick:
        args.annotators, args.seconds, args.kill_seconds, args.items = 5, 10.0, 8.0, 2_000

    from pgcluster import PostgresCluster, PostgresUnavailable

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="headstart-load-") as scratch:
        work = Path(scratch)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                rows += bench_backend("sqlite", lambda folder: str(folder / "labels.db"), args, work)
                continue
            cluster = PostgresCluster()
            try:
                cluster.start()
            except PostgresUnavailable as error:
                notes.append(f"postgresql not measured: {error}")
                continue
            try:
                rows += bench_backend("postgresql", lambda folder, cluster=cluster: cluster.new_database(), args, work)
            finally:
                cluster.stop()
    columns = ["backend", "phase", "seconds", "acknowledged", "labels_per_s", "lost", "duplicated", "conflicts_409",
               "label_p50_ms", "label_p99_ms", "label_server_p50_ms", "next_p50_ms", "next_p99_ms",
               "browser_next_item_p50_ms", "browser_next_item_p99_ms", "rss_start_mb", "rss_end_mb",
               "rss_fresh_same_db_mb"]
    print_table(rows, columns, title=f"{args.annotators} annotators over HTTP on {HOST}")
    targets = []
    for row in rows:
        label = f"{row['backend']} {row['phase']}"
        targets += [target(f"{label}: labels lost", row["lost"], "<=", 0),
                    target(f"{label}: labels duplicated", row["duplicated"], "<=", 0),
                    target(f"{label}: server-side label p99 (ms)", row["label_server_p99_ms"], "<=", 100)]
        if row["phase"] == "steady" and row["rss_start_mb"]:
            targets.append(target(f"{label}: RSS growth end/start", round(row["rss_end_mb"] / row["rss_start_mb"], 3),
                                  "<=", 1.2))
    print_targets(targets)
    for note in notes:
        print(note)
    name = "-".join(filter(None, ["label_load", "quick" if args.quick else "", args.tag]))
    path = write_results(name, {"settings": {k: v for k, v in vars(args).items() if k not in ("serve", "db", "features",
                                                                                          "port")},
                                "rows": rows, "targets": targets, "notes": notes})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
