"""The example project (``example_project/``): its own login page, in the app's style."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
upload = client.get("/upload-image/")
login = client.get(upload["Location"])
print(json.dumps({
    "upload": [upload.status_code, upload["Location"]],
    "login": [login.status_code, login.content.decode()],
}))
"""


@pytest.mark.db_independent
def test_the_example_site_sends_visitors_to_its_own_login_page(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PYTHONPATH": os.pathsep.join([str(REPO / "example_project"), str(REPO)]),
    }
    env.pop("REDIS_URL", None)
    output = subprocess.run(
        [sys.executable, str(REPO / "example_project" / "manage.py"), "shell", "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    seen = json.loads(output.strip().splitlines()[-1])
    assert seen["upload"] == [302, "/accounts/login/?next=/upload-image/"]
    status, html = seen["login"]
    assert status == 200
    assert 'class="image-sync"' in html  # the app's base template, not the admin's
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert 'name="next" value="/upload-image/"' in html
    assert "/static/django_image_sync/image_sync.css" in html
