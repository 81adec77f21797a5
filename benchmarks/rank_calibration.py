"""How far above the ranking's CV probe score does a fine-tune land? The calibration `headstart rank` prints.

Reads the finished runs of ``ranking.py`` (``results/ranking-*.json``, quick runs left out) and,
for every pretrained candidate of every case (random-init references left out: they are not
candidates a user ranks), takes the fine-tuned test accuracy minus the candidate's cross-validated
probe score on the same training items. The smallest and largest of these gaps are the range that
``headstart.transfer.rank_guide.FINETUNED_OVER_PROBE`` holds (tests/transfer/test_rank_guide.py
checks that the two agree), together with the training-set sizes they were measured at.

H-score, LogME, NCE and LEEP are left uncalibrated: their scale changes with the number of classes
and the feature size, and the benchmark has too few cases (three data sets, 2 to 10 classes) to map
them to accuracy; the probe score is itself an accuracy, so only its offset is estimated.

    python benchmarks/rank_calibration.py          # prints the gaps, writes results/rank_calibration-<date>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def ranking_runs(results: Path = RESULTS) -> list[Path]:
    """The finished, full-size ranking runs: neither quick nor cut short."""
    runs = []
    for path in sorted(results.glob("ranking-*.json")):
        document = json.loads(path.read_text())
        if not document.get("quick") and not document.get("partial"):
            runs.append(path)
    return runs


def probe_gaps(results: Path = RESULTS) -> list[dict]:
    """One row per pretrained candidate and case: fine-tuned accuracy, probe score and their gap."""
    rows = []
    for path in ranking_runs(results):
        for case in json.loads(path.read_text())["cases"]:
            for row in case["rows"]:
                if "random init" in row["backbone"] or row.get("finetuned_accuracy") is None:
                    continue
                rows.append({"run": path.name, "case": case["case"], "n_train": case["n_train"],
                             "backbone": row["backbone"], "probe": row["probe"],
                             "finetuned_accuracy": row["finetuned_accuracy"],
                             "gap": row["finetuned_accuracy"] - row["probe"]})
    return rows


def calibration(results: Path = RESULTS) -> dict:
    """The smallest and largest gap, and the training-set sizes and runs they come from."""
    rows = probe_gaps(results)
    gaps = [r["gap"] for r in rows]
    sizes = [r["n_train"] for r in rows]
    return {"finetuned_over_probe": [min(gaps), max(gaps)], "n_train": [min(sizes), max(sizes)],
            "n_candidates": len(rows), "cases": sorted({r["case"] for r in rows}),
            "runs": sorted({r["run"] for r in rows}), "rows": rows}


def main() -> int:
    try:
        import common
    except ImportError:
        from benchmarks import common

    result = calibration()
    common.print_table(result["rows"], ["run", "case", "n_train", "backbone", "probe", "finetuned_accuracy", "gap"],
                       title="Fine-tuned test accuracy against the CV probe score")
    low, high = result["finetuned_over_probe"]
    print(f"\nfine-tuned = probe {100 * low:+.1f} to {100 * high:+.1f} points, over {result['n_candidates']} "
          f"pretrained candidates at {result['n_train'][0]}-{result['n_train'][1]} training items")
    print(f"wrote {common.write_results('rank_calibration', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
