"""Django test clients signed in as a user."""

from __future__ import annotations

from typing import Any

from django.test import Client


def logged_in(user: Any, **kwargs: Any) -> Client:
    """A test client with ``user``'s session; ``kwargs`` go to ``Client``."""
    client = Client(**kwargs)
    client.force_login(user)
    return client
