"""The registry of processing backends: a resize function by name or dotted path.

The only module that imports a backend. The libvips and the auto backend are
imported only when asked for: pyvips is an optional dependency (``pip install
django-image-sync[vips]``), so ``ImportError`` or ``OSError`` (libvips itself
missing) come from :func:`resizer_for` where it is absent.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import IO, Any

from ..types import Rendered, RenditionPlan, ResizeResult, ResizeSpec

Resizer = Callable[[IO[bytes], ResizeSpec], ResizeResult]
Renderer = Callable[[IO[bytes], RenditionPlan, frozenset[str]], Rendered]

# Short names of the backends that ship with the app, and their modules.
BACKENDS = {
    "pillow": "django_image_sync.processing.backends.pillow",
    "vips": "django_image_sync.processing.backends.vips",
    # Pillow's reduced JPEG decode, then libvips; else libvips (see backends/auto.py).
    "auto": "django_image_sync.processing.backends.auto",
}


def backend_name(value: str) -> str:
    """``value`` as the registry knows it: a short name in lower case, a dotted path as is."""
    return value.lower() if value.lower() in BACKENDS else value


def resizer_for(backend: str) -> Resizer:
    """The ``resize_image`` function of ``backend``.

    ``backend`` is a name of :data:`BACKENDS` or the dotted path of a module
    with a ``resize_image(fileobj, spec)`` function of the same contract
    (see ``docs/settings.md``). Looked up at each call, so a test can replace
    a backend's function.
    """
    resize: Resizer = _module(backend).resize_image
    return resize


def renderer_for(backend: str) -> Renderer | None:
    """The ``render(fileobj, plan, skip)`` function of ``backend``, which makes
    every output of a :class:`RenditionPlan` from one decode; None for a
    module of a site's own that has only ``resize_image`` (the main output)."""
    render: Renderer | None = getattr(_module(backend), "render", None)
    return render


def _module(backend: str) -> Any:
    module_name = BACKENDS.get(backend, backend)
    if "." not in module_name:
        raise ValueError(
            f"unknown processing backend {backend!r}; use one of {', '.join(BACKENDS)} "
            "or the dotted path of a module"
        )
    return importlib.import_module(module_name)


__all__ = ["BACKENDS", "Renderer", "Resizer", "backend_name", "renderer_for", "resizer_for"]
