"""Assemble one self-contained HTML page: the template, its CSS and scripts inline, the data as embedded JSON.

The page needs no server and no network: every style and script is written into the file, and the data sits in
a ``<script type="application/json" id="cscprog-data">`` block. :func:`embed_json` escapes ``<``, ``>``, ``&``
and the two JavaScript line separators as ``\\uXXXX``, so no text in the data (``</script>`` included) can end
the block or start markup.

Example:
    ```python
    from cscprog.view.page import render_page

    html = render_page("viewer", {"kind": "dialogues", "dialogues": []}, title="My data")
    ```
"""

from __future__ import annotations

import html
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

from cscprog.errors import DataError

__all__ = ["PAGES", "embed_json", "render_page", "write_page"]

_COMMON_CSS = ("base.css",)
PAGES: dict[str, dict[str, tuple[str, ...]]] = {
    "viewer": {"css": (*_COMMON_CSS, "viewer.css"),
               "js": ("util.js", "pager.js", "dialogue.js", "dialogues_tab.js", "run_tab.js", "run_matrix.js",
                      "viewer.js")},
    "human_eval": {"css": (*_COMMON_CSS, "human_eval.css"),
                   "js": ("util.js", "pager.js", "dialogue.js", "human_eval.js")},
}
"""The pages cscprog writes and the asset files inlined into each, in order (all share ``page.html``)."""

_PLACEHOLDER = re.compile(r"\{\{(TITLE|CSS|DATA|SCRIPTS)\}\}")
_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def embed_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script type="application/json">`` block.

    Example:
        ```python
        embed_json({"text": "</script><b>"})   # '{"text": "\\u003c/script\\u003e\\u003cb\\u003e"}'
        ```
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for character, escape in _ESCAPES:  # str.replace runs in C: a 20 MB page in tens of milliseconds
        text = text.replace(character, escape)
    return text


def _asset(name: str) -> str:
    return resources.files("cscprog.view").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(page: str, payload: dict[str, Any], *, title: str) -> str:
    """The whole HTML text of one page.

    Args:
        page: A key of :data:`PAGES` (``viewer`` or ``human_eval``).
        payload: The JSON-able data the page's scripts read.
        title: The page title (HTML-escaped here).

    Raises:
        ValueError: ``page`` is not one of :data:`PAGES`.

    Example:
        ```python
        html = render_page("viewer", payload, title="annotated_en")
        ```
    """
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; pages: {', '.join(PAGES)}")
    assets = PAGES[page]
    css = "\n".join(_asset(name) for name in assets["css"])
    scripts = "\n".join(f"<script>\n{_asset(name)}\n</script>" for name in assets["js"])
    values = {"TITLE": html.escape(title), "CSS": css, "DATA": embed_json(payload), "SCRIPTS": scripts}
    # one pass over the template: text inside the values is never taken for a placeholder
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], _asset("page.html"))


def write_page(path: str | os.PathLike[str], page: str, payload: dict[str, Any], *, title: str) -> Path:
    """Render a page and write it to ``path`` (parent directories created).

    Raises:
        DataError: the file cannot be written.

    Example:
        ```python
        write_page("out/page.html", "viewer", payload, title="annotated_en")
        ```
    """
    target = Path(path)
    text = render_page(page, payload, title=title)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise DataError(str(target), f"cannot write the page ({error})") from None
    return target
