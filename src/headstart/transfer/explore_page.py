"""The pool map's page: ``explore.json``, ``explore.png`` and ``explore.html`` in a folder.

Written by ``headstart explore``; it reads only the summary dict (see
:func:`headstart.evaluate.pool_map.pool_map`), and draws with the page code of the other transfer
reports (:mod:`headstart.transfer.page`), whose template escapes every text.
"""

from __future__ import annotations

from pathlib import Path

from headstart.evaluate.diagnostics import thumbnail
from headstart.evaluate.explore_plot import explore_png
from headstart.evaluate.pool_map import summary_sentence
from headstart.transfer import page

STEM = "explore"
PAGE = f"{STEM}.html"
TITLE = "headstart: a map of the pool"


def write_explore_page(folder: str | Path, summary: dict) -> Path:
    """Write ``explore.json``, ``explore.png`` and ``explore.html`` for a pool map into ``folder``.

    Args:
        folder: where the files go (created if missing); each is written atomically.
        summary: an explore summary (``ExploreReport.summary``).

    Returns:
        ``folder``; the page is ``folder / "explore.html"``.
    """
    picture = explore_png(summary)
    return page.write_result(folder, STEM, payload=summary, picture=picture, title=TITLE,
                             sentences=[summary_sentence(summary)], sections=explore_sections(summary, picture))


def explore_sections(summary: dict, picture: bytes) -> list[dict]:
    """The page's sections (see :func:`headstart.transfer.page.render_page`): map, clusters, merges, splits."""
    labeled = summary.get("merges") is not None
    images = summary.get("modality") == "image"
    sections = [{"title": "Map of the pool", "png": picture,
                 "text": [f"{summary['items']} items of {summary.get('pool') or 'the pool'} on "
                          f"{summary.get('backbone') or 'the backbone'}'s frozen features, L2-normalized; "
                          f"the number of clusters: {summary['criterion']}. The right panel shows the "
                          "silhouette of each k tried."]},
                {"title": "Clusters", "columns": ["cluster", "items", "share", *(["classes"] if labeled else [])],
                 "rows": [[c["cluster"], c["size"], f"{c['share']:.0%}",
                           *([", ".join(f"{n} {v}" for n, v in c["labels"].items())] if labeled else [])]
                          for c in summary["clusters"]]}]
    for cluster in summary["clusters"]:
        sections.append({"title": f"Cluster {cluster['cluster']}: its most typical items (nearest its centre)",
                         **_items_table(cluster["typical"], labeled, images)})
    if labeled:
        sections += _class_sections(summary, images)
    return sections


def _items_table(entries: list[dict], labeled: bool, images: bool) -> dict:
    # images as thumbnails, as in the report's mistakes table (made when the page is written: not in the JSON)
    def shown(entry: dict):
        return {"text": Path(entry["item"]).name, "image": thumbnail(entry["item"])} if images else entry["item"]

    return {"columns": ["item", "from", *(["label"] if labeled else [])],
            "rows": [[shown(e), e["origin"], *([e.get("label")] if labeled else [])] for e in entries]}


def _class_sections(summary: dict, images: bool) -> list[dict]:
    sections = [{"title": "Classes the features mix up (candidate merges)",
                 "text": ["A pair is listed when its items' nearest neighbours are of the other class of the "
                          f"pair often ({summary['merge_rule']}; mixing 1 means the two labels could be shuffled). "
                          "Either the labels are used inconsistently, or the difference needs more than this "
                          "backbone sees." if summary["merges"] else "No pair of classes is mixed up on these "
                          "features."],
                 "columns": ["classes", "neighbours of the other class", "mixing", "items"],
                 "rows": [[" + ".join(p["classes"]), f"{p['rate']:.0%}", p["mixing"], p["items"]]
                          for p in summary["merges"]]},
                {"title": "Classes that hold two groups (candidate splits)",
                 "text": [f"Each class is cut in two by k-means; it is listed when {summary['split_rule']} and "
                          "the smaller part holds at least a tenth of it: a coarse label that may hide two kinds of "
                          "item."],
                 "columns": ["class", "silhouette of the two parts", "flagged"],
                 "rows": [[name, score, "yes" if name in {e["class"] for e in summary["splits"]} else ""]
                          for name, score in sorted((summary.get("split_silhouettes") or {}).items(),
                                                    key=lambda kv: -kv[1])]}]
    for entry in summary["splits"]:
        for part, (size, items) in enumerate(zip(entry["sizes"], entry["typical"]), start=1):
            sections.append({"title": f"{entry['class']}, part {part} of 2 ({size} items): most typical",
                             **_items_table(items, True, images)})
    return sections
