"""Look at the data: self-contained HTML pages of dialogues, evaluation runs and blind human evaluations.

Example:
    ```python
    from cscprog.view import build_view

    build_view(["sample:annotated_en"], "page.html")
    ```
"""

from cscprog.view.build import build_view, view_payload
from cscprog.view.page import embed_json, render_page, write_page

__all__ = ["build_view", "embed_json", "render_page", "view_payload", "write_page"]
