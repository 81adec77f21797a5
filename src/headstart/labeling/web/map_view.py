"""The Map page's figures: the pool's clusters, their most typical items and the 2-D map.

The summary is the one stored by :mod:`headstart.labeling.pool_map_check`; its picture is the one
``headstart explore`` draws, inlined as a PNG (the page's policy allows ``data:`` images).
"""

from __future__ import annotations

from headstart.labeling.pool_map_check import SETTING
from headstart.labeling.project import LabelingProject


def map_view(project: LabelingProject) -> dict:
    """``pool_map`` (the stored summary, or None), ``sentence``, ``skipped`` (why there is none) and ``png``."""
    summary = project.settings.get(SETTING)
    if not summary:
        return {"pool_map": None, "sentence": None, "png": None,
                "skipped": "the pool has not been mapped yet: “Map the pool” draws it from the pool's cached features"}
    if "skipped" in summary:
        return {"pool_map": None, "sentence": None, "skipped": summary["skipped"], "png": None}
    from headstart.evaluate.explore_plot import explore_png
    from headstart.evaluate.pool_map import summary_sentence
    from headstart.output import png_base64

    return {"pool_map": summary, "sentence": summary_sentence(summary), "skipped": None,
            "png": png_base64(explore_png(summary))}
