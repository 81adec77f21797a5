"""A small self-contained HTML page for the ranking, learning-curve and layer reports.

Plots are drawn on :func:`headstart.output.new_figure` and inlined as base64 PNGs, as in
:mod:`headstart.evaluate.report`; every file is written atomically by :mod:`headstart.output`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

from jinja2 import Environment

from headstart.output import png_base64, write_bytes, write_json, write_text

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
 img.thumb { width: 72px; height: auto; image-rendering: pixelated; border: 1px solid #d0d7de; vertical-align: middle; }
</style></head><body><main>
<h1>{{ title }}</h1>
{% for sentence in sentences %}<p class="verdict">{{ sentence }}</p>{% endfor %}
{% for section in sections %}
<section><h2>{{ section.title }}</h2>
{% for text in section.get("text", []) %}<p>{{ text }}</p>{% endfor %}
{% if section.get("png") %}<figure><img alt="{{ section.title }}" src="data:image/png;base64,{{ section.png }}">
</figure>{% endif %}
{% if section.get("columns") %}<table><thead><tr>{% for c in section.columns %}<th>{{ c }}</th>{% endfor %}</tr>
</thead><tbody>{% for row in section.rows %}<tr>{% for cell in row %}<td>
{%- if cell is mapping %}{% if cell.image %}<img class="thumb" alt="{{ cell.text }}"
 src="data:image/png;base64,{{ cell.image }}"> {% endif %}{{ cell.text }}{% else %}{{ cell }}{% endif -%}
</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% endif %}
</section>
{% endfor %}
</main></body></html>
"""


class TransferResult(Protocol):
    """What ``headstart rank``, ``curve`` and ``layers`` print and keep.

    A plain-text table, one sentence that answers the question, and the files of
    :func:`result_files` (``save``).
    """

    stem: str  # the files' name: ranking, curve, layers

    def table(self) -> str:
        """The result as a plain-text table."""

    def sentence(self) -> str:
        """One sentence that answers the question."""

    def save(self, folder: str | Path) -> Path:
        """Write the result's JSON, PNG and HTML files into ``folder`` and return it."""


def result_files(folder: str | Path, stem: str) -> dict[str, Path]:
    """Where :func:`write_result` puts a result's files: ``data`` (JSON), ``plot`` (PNG), ``report`` (HTML)."""
    folder = Path(folder)
    return {"data": folder / f"{stem}.json", "plot": folder / f"{stem}.png", "report": folder / f"{stem}.html"}


def cell(value) -> str:
    """A table cell's text: a dash for None, four significant digits for a float."""
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


def render_page(*, title: str, sentences: Sequence[str] = (), sections: Sequence[dict] = ()) -> str:
    """The HTML text of a page of sentences and sections.

    A section is a dict: ``title``, and optionally ``text`` (paragraphs), ``png`` (bytes), ``columns``
    and ``rows`` (a table; a cell may be ``{"text": ..., "image": base64 PNG or None}``, a thumbnail).
    """
    prepared = []
    for section in sections:
        section = dict(section)
        if section.get("png") is not None:
            section["png"] = png_base64(section["png"])
        section["rows"] = [[v if isinstance(v, dict) else cell(v) for v in row] for row in section.get("rows", [])]
        prepared.append(section)
    return Environment(autoescape=True).from_string(_TEMPLATE).render(
        title=title, sentences=list(sentences), sections=prepared)


def write_page(path: str | Path, *, title: str, sentences: Sequence[str] = (),
               sections: Sequence[dict] = ()) -> Path:
    """Write an HTML page of sentences and sections (see :func:`render_page`), atomically."""
    return write_text(Path(path), render_page(title=title, sentences=sentences, sections=sections))


def write_result(folder: str | Path, stem: str, *, payload, picture: bytes, title: str,
                 sentences: Sequence[str] = (), sections: Sequence[dict] = ()) -> Path:
    """Write the three files every transfer report leaves into ``folder``.

    They are ``<stem>.json`` (``payload``), ``<stem>.png`` (``picture``) and ``<stem>.html`` (the
    page inlines its own plots).
    """
    files = result_files(folder, stem)
    write_json(files["data"], payload)
    write_bytes(files["plot"], picture)
    write_page(files["report"], title=title, sentences=sentences, sections=sections)
    return Path(folder)
