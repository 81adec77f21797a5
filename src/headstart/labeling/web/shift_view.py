"""The Shift page's figures: how the unlabeled pool differs from the labeled items.

The summary is the one ``headstart label init`` stored (:mod:`headstart.labeling.shift_check`);
its picture is the one ``headstart shift`` draws, inlined as a PNG (the page's policy allows
``data:`` images, and a PNG runs no code).
"""

from __future__ import annotations

from headstart.labeling.project import LabelingProject
from headstart.labeling.shift_check import SETTING


def shift_view(project: LabelingProject) -> dict:
    """``shift`` (the stored summary, or None), ``skipped`` (why there is none) and ``png`` (base64)."""
    summary = project.settings.get(SETTING)
    if not summary:
        return {"shift": None, "skipped": "no shift check has run yet: `headstart label init` runs one when the pool "
                                          "has 20 labeled and 20 unlabeled items, and so does “Check again”",
                "png": None}
    if "skipped" in summary:
        return {"shift": None, "skipped": summary["skipped"], "png": None}
    from headstart.evaluate.shift_plot import shift_png
    from headstart.output import png_base64

    return {"shift": summary, "skipped": None, "png": png_base64(shift_png(summary))}

