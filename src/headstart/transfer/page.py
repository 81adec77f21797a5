"""A small self-contained HTML page for the ranking, learning-curve and layer reports.

Plots are matplotlib figures on the Agg canvas (no pyplot state), inlined as base64 PNGs,
as in :mod:`headstart.evaluate.report`, whose figure and atomic-write helpers are reused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Sequence

from jinja2 import Environment

from headstart.evaluate.report import _atomic_write, _new_figure, _png  # noqa: F401 - re-exported helpers

new_figure, png = _new_figure, _png

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
 body { font-family: -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2328; margin: 0;
        background: #f6f8fa; line-height: 1.45; }
 main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
 h2 { font-size: 1.2em; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 1.8em; }
 .verdict { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 8px 12px; }
 table { border-collapse: collapse; font-size: 0.92em; }
 th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; }
 th { background: #f6f8fa; } img { max-width: 100%; }
</style></head><body><main>
<h1>{{ title }}</h1>
{% for sentence in sentences %}<p class="verdict">{{ sentence }}</p>{% endfor %}
{% for section in sections %}
<section><h2>{{ section.title }}</h2>
{% for text in section.get("text", []) %}<p>{{ text }}</p>{% endfor %}
{% if section.get("png") %}<figure><img alt="{{ section.title }}" src="data:image/png;base64,{{ section.png }}">
</figure>{% endif %}
{% if section.get("columns") %}<table><thead><tr>{% for c in section.columns %}<th>{{ c }}</th>{% endfor %}</tr>
</thead><tbody>{% for row in section.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
</section>
{% endfor %}
</main></body></html>
"""


def cell(value) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_text(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A fixed-width plain-text table (numbers right-aligned)."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)), "  ".join("-" * w for w in widths)]
    for row, raw in zip(cells, rows):
        lines.append("  ".join(v.rjust(w) if isinstance(x, (int, float)) else v.ljust(w)
                               for v, x, w in zip(row, raw, widths)))
    return "\n".join(lines)


def write_page(path: str | Path, *, title: str, sentences: Sequence[str] = (),
               sections: Sequence[dict] = ()) -> Path:
    """Write the page atomically. A section: ``title``, optional ``text`` (paragraphs), ``png``
    (bytes), ``columns`` and ``rows`` (a table)."""
    path = Path(path)
    prepared = []
    for section in sections:
        section = dict(section)
        if section.get("png") is not None:
            section["png"] = base64.b64encode(section["png"]).decode("ascii")
        section["rows"] = [[cell(v) for v in row] for row in section.get("rows", [])]
        prepared.append(section)
    html = Environment(autoescape=True).from_string(_TEMPLATE).render(
        title=title, sentences=list(sentences), sections=prepared)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, html)
    return path


def write_json(path: str | Path, payload) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(payload, indent=2, default=float) + "\n")
    return path


def write_result(folder: str | Path, stem: str, *, payload, picture: bytes, title: str,
                 sentences: Sequence[str] = (), sections: Sequence[dict] = ()) -> Path:
    """Write ``<stem>.json`` (``payload``), ``<stem>.png`` (``picture``) and ``<stem>.html`` into
    ``folder``: the three files every transfer report leaves (the page inlines its own plots)."""
    folder = Path(folder)
    write_json(folder / f"{stem}.json", payload)
    (folder / f"{stem}.png").write_bytes(picture)
    write_page(folder / f"{stem}.html", title=title, sentences=sentences, sections=sections)
    return folder
