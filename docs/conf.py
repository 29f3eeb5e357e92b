"""Sphinx configuration of the django-image-sync documentation.

Build with warnings as errors, as ``scripts/test`` and ``tox -e docs`` do::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build works offline. Set ``DOCS_INTERSPHINX=1`` to fetch Django's object
inventory as well (it needs the network).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Read the version from the package without importing it (no Django needed here).
_init = (ROOT / "django_image_sync" / "__init__.py").read_text(encoding="utf-8")
_match = re.search(r'^__version__ = "([^"]+)"', _init, re.MULTILINE)
release = _match.group(1) if _match else "unknown"
version = ".".join(release.split(".")[:2])

# -- Project information ------------------------------------------------------

project = "django-image-sync"
author = "django-image-sync developers"
copyright = "django-image-sync developers"

# -- General configuration ----------------------------------------------------

extensions = [
    "myst_parser",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Headings down to ### get anchors, so pages can link to one setting or one check.
myst_heading_anchors = 3

# -- Intersphinx ----------------------------------------------------------------

# Django's inventory is only fetched on request: the default build must pass with
# no network. Implicit lookups are disabled either way, so a missing inventory
# cannot turn an ordinary reference into a warning.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
if os.environ.get("DOCS_INTERSPHINX") == "1":
    intersphinx_mapping["django"] = (
        "https://docs.djangoproject.com/en/stable/",
        "https://docs.djangoproject.com/en/stable/_objects/",
    )
intersphinx_disabled_reftypes = ["*"]

# -- HTML output ------------------------------------------------------------------

html_theme = "furo"
html_title = f"django-image-sync {release}"
