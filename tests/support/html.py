"""Reading rendered HTML in tests with Django's own parser (``parse_html``)."""

from __future__ import annotations

from typing import Any

from django.test.html import parse_html


def elements(html: str, tag: str | None) -> list[Any]:
    """Every element named ``tag`` (every element for None), in document order."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            return
        if tag is None or node.name == tag:
            found.append(node)
        for child in node.children:
            walk(child)

    walk(parse_html(html))
    return found


def attrs(element: Any) -> dict[str, str | None]:
    return dict(element.attributes)
