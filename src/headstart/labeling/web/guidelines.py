"""The project's labeling guidelines: markdown an admin writes on the admin page, shown to everyone
who labels or reviews in a panel above the item.

Rendered with markdown-it-py's CommonMark preset and HTML off: a ``<script>`` or ``<img onerror>``
in the text comes out as text, and links with a ``javascript:``/``data:`` URL are not made links
(markdown-it's own link check). The page's Content-Security-Policy stands behind that anyway.
"""

from __future__ import annotations

from markupsafe import Markup

from headstart.errors import LabelingError

MAX_CHARS = 20_000
SETTING = "guidelines"


def guidelines_of(project) -> str:
    """The guidelines' markdown ("" when none were written)."""
    return str(project.store.project.settings.get(SETTING, "") or "")


def set_guidelines(project, markdown: str) -> None:
    """Store new guidelines ("" removes them)."""
    markdown = markdown.replace("\r\n", "\n").strip()
    if len(markdown) > MAX_CHARS:
        raise LabelingError(f"the guidelines have {len(markdown):,} characters", where="guidelines",
                            fix=f"keep them under {MAX_CHARS:,} characters (link to a longer document)")
    project.store.update_settings(**{SETTING: markdown})


def to_html(markdown: str) -> Markup:
    """``markdown`` as HTML that is safe to put in the page as it is."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return Markup(renderer.render(markdown))
