"""The shift page: ``shift.json``, ``shift.png`` and ``shift.html`` in a folder.

Written by ``headstart shift`` and, beside ``report.html``, by a fit with a target; it reads only
the summary dict (see :class:`headstart.transfer.shift.ShiftReport`).
"""

from __future__ import annotations

import json
from pathlib import Path

from headstart.evaluate.shift import ALPHA, AUC_FLOOR
from headstart.evaluate.shift_plot import shift_png
from headstart.output import json_value
from headstart.transfer import page

STEM = "shift"
PAGE = f"{STEM}.html"
TITLE = "headstart: data shift"


def summary_sentence(summary: dict) -> str:
    """One sentence on a shift summary: the verdict, the AUC and p-value, the largest prior change."""
    figures = f"domain classifier AUC {summary['auc']:.2f}, p = {summary['p_value']:.3g}"
    if summary["shifted"]:
        text = f"The target is shifted from the source ({figures})."
    elif summary["auc"] >= AUC_FLOOR:
        text = f"No shift shown: the difference is not significant ({figures}; shifted needs p <= {ALPHA})."
    else:
        text = f"No shift that matters ({figures}; shifted needs AUC >= {AUC_FLOOR} and p <= {ALPHA})."
    change = summary.get("prior_shift")
    if change:
        text += (f" Class priors, estimated from the target's predictions, move by up to {change['size']:.2f} "
                 f"({change['class']}: {change['source']:.2f} -> {change['target']:.2f})")
        # EM assumes p(x|y) is the same on both sides (see evaluate.priors.UNDER_SHIFT)
        text += "; a rough guide only, since the inputs differ too." if summary["shifted"] else "."
    return text


def write_shift_page(folder: str | Path, summary: dict) -> Path:
    """Write ``shift.json``, ``shift.png`` and ``shift.html`` for a shift summary into ``folder``.

    Args:
        folder: where the files go (created if missing); each is written atomically.
        summary: a shift summary (``ShiftReport.summary``).

    Returns:
        ``folder``; the page is ``folder / "shift.html"``.
    """
    picture = shift_png(summary)
    return page.write_result(folder, STEM, payload=summary, picture=picture, title=TITLE,
                             sentences=[summary_sentence(summary)], sections=_sections(summary, picture))


def shift_page_files(summary: dict) -> dict[str, str]:
    """``shift.html`` (its plot inlined) and ``shift.json`` as texts, for a model folder's ``extra_files``.

    A fit with a target saves them beside ``report.html``, which links to :data:`PAGE`.
    """
    html = page.render_page(title=TITLE, sentences=[summary_sentence(summary)],
                            sections=_sections(summary, shift_png(summary)))
    return {PAGE: html, f"{STEM}.json": json.dumps(summary, indent=2, default=json_value) + "\n"}


def _sections(summary: dict, picture: bytes) -> list[dict]:
    test_rows = [["domain classifier AUC (cross-validated)", summary["auc"]],
                 ["permutation p-value", summary["p_value"]], ["permutations", summary["permutations"]],
                 ["items a side (balanced)", summary["items_per_side"]], ["rule", summary["rule"]],
                 ["backbone", summary.get("backbone")]]
    sections = [{"title": "Can a classifier tell the target from the source?", "columns": ["measure", "value"],
                 "rows": test_rows,
                 "text": ["A logistic regression on the backbone's frozen features learns to tell target items "
                          "from source items; its cross-validated AUC is 0.5 when it cannot. The p-value is the "
                          "share of shuffled source/target assignments that reach the same AUC."]},
                {"title": "Map of both sides", "png": picture}]
    priors = summary.get("priors")
    if priors:
        labeled = any(v.get("labeled") is not None for v in priors.values())
        sections.append({"title": "Class priors", "columns": ["class", "source", "target (estimated)",
                                                              *(["target (labels)"] if labeled else [])],
                         "rows": [[name, v["source"], v["target"], *([v["labeled"]] if labeled else [])]
                                  for name, v in priors.items()],
                         "text": ["The target's priors are re-estimated by EM from a source-trained probe's "
                                  "predictions (Saerens et al. 2002).",
                                  *([f"Here {summary['priors_note']}."] if summary.get("priors_note") else [])]})
    for side in ("source", "target"):
        items = summary.get("typical", {}).get(side, [])
        sections.append({"title": f"Most typical of the {side}", "columns": ["item", "from", "P(target)"],
                         "rows": [[entry["item"], entry["origin"], entry["p_target"]] for entry in items]})
    return sections
