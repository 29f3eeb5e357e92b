"""Soak: a bounded stream of mixed uploads against a real deployment on this machine.

gunicorn (several processes, threads) serves the test site (``tests.settings``)
on loopback, one Celery worker resizes over Redis, PostgreSQL holds the rows.
The run has its own database (created, then dropped), its own Celery queue,
cache key prefix and MEDIA_ROOT, so it touches nothing else on the services.

Several clients, two per user, send a planned mix of uploads: new images (JPEG
and PNG, up to 4000x3000), re-uploads of their own, images another user already
sent, two-file submissions, and invalid ones (text, truncated, GIF, empty, and a
valid file riding with a broken one). Afterwards:

- every request was answered as planned: 200/201 for valid submissions, 400 for
  invalid ones; nothing else (no 5xx, no dropped connection);
- each (user, content) pair was created exactly once, every other answer for it
  being a duplicate of the same id;
- every image reaches ``done`` (none ``failed``) within the drain timeout;
- the database holds exactly one row per (user, content) sent validly, and
  MEDIA_ROOT exactly one original and one resized file per distinct content;
- the Celery worker's peak memory (sum of VmHWM of its processes, sampled from
  /proc) stays under ``--max-worker-mb``.

It prints the figures (requests, answers by status, latency p50/p99, time to
drain the backlog, worker peak memory) and exits 1 when a check fails, 2 when
the run could not be set up. Run it through ``scripts/soak``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# scripts/soak puts the checkout on sys.path
from tests.support import services
from tests.support.processes import Service, free_port
from tests.support.services import PG, postgres_database

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("IMAGE_SYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT = 60
# The worker's memory cap: measured on 2 CPUs (docs/reliability-figures.md), the
# worker's three processes (--concurrency=2) start at 229 MB of summed VmHWM and
# peak at 328 MB resizing 4000x3000 photos, whatever the number of uploads.
WORKER_BASE_MB = 100.0
WORKER_PER_PROCESS_MB = 150.0
HTTP_TIMEOUT = 60

# -- the content -------------------------------------------------------------------------


def photo_like(size: tuple[int, int], seed: int, mode: str = "RGB") -> Any:
    """A smooth gradient with some noise (compresses like a photo); as tests/images.py."""
    from PIL import Image

    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    small = Image.new("RGB", (16, 16))
    small.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(256)]
    )
    im = small.resize(size, Image.Resampling.BICUBIC)
    return im.convert(mode) if mode != "RGB" else im


def encode(im: Any, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def base_images() -> list[tuple[str, bytes]]:
    """A few originals of the kinds sites get; each upload makes its own variant."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter
    return [
        ("jpg", encode(photo_like((640, 480), 1), "JPEG", quality=90)),
        ("jpg", encode(photo_like((1600, 1200), 2), "JPEG", quality=90)),
        ("jpg", encode(photo_like((3000, 2000), 3), "JPEG", quality=92)),
        ("jpg", encode(photo_like((4000, 3000), 4), "JPEG", quality=90)),
        ("jpg", encode(photo_like((2400, 1800), 5), "JPEG", quality=90, exif=exif.tobytes())),
        ("png", encode(photo_like((800, 600), 6), "PNG")),
        ("png", encode(photo_like((600, 400), 7, "RGBA"), "PNG")),
    ]


def variant(kind: str, data: bytes, label: bytes) -> bytes:
    """The same picture with other bytes: a JPEG comment or a PNG text chunk added."""
    if kind == "jpg":
        segment = b"\xff\xfe" + struct.pack(">H", len(label) + 2) + label
        return data[:2] + segment + data[2:]
    body = b"Comment\x00" + label
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + chunk + data[end_of_ihdr:]


def invalid_files(seed: int) -> dict[str, tuple[str, bytes]]:
    jpeg = encode(photo_like((800, 600), 900 + seed), "JPEG", quality=90)
    return {
        "text": ("notes.jpg", b"these are holiday notes, not a photo\n" * 40),
        "truncated": ("cut.jpg", jpeg[: len(jpeg) // 2]),
        "gif": ("anim.jpg", encode(photo_like((64, 48), 950 + seed).convert("P"), "GIF")),
        "empty": ("empty.jpg", b""),
    }


# -- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    name: str
    data: bytes
    sha256: str
    extension: str


@dataclass(frozen=True)
class Submission:
    client: int
    user: int
    kind: str
    files: tuple[Item, ...]
    valid: bool


@dataclass
class Plan:
    submissions: list[Submission]
    # What the database and MEDIA_ROOT must hold afterwards.
    rows: set[tuple[int, str]] = field(default_factory=set)
    contents: dict[str, str] = field(default_factory=dict)  # sha256 -> extension
    never_stored: set[str] = field(default_factory=set)


KINDS = {
    "new": 50,
    "own duplicate": 15,
    "other user's content": 10,
    "two files": 8,
    "invalid": 12,
    "valid with invalid": 5,
}


def make_plan(uploads: int, clients: int, seed: int) -> Plan:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    bases = base_images()
    bad = invalid_files(seed)
    users = max(1, clients // 2)
    counter = iter(range(10**9))
    sent_by: dict[int, list[Item]] = defaultdict(list)  # user -> valid items planned
    all_sent: list[tuple[int, Item]] = []

    def new_item() -> Item:
        kind, data = bases[rng.randrange(len(bases))]
        n = next(counter)
        blob = variant(kind, data, f"soak {seed} image {n}".encode())
        return Item(f"photo-{n}.{kind}", blob, hashlib.sha256(blob).hexdigest(), kind)

    def invalid_item() -> Item:
        name, blob = bad[rng.choice(sorted(bad))]
        return Item(name, blob, hashlib.sha256(blob).hexdigest(), "")

    submissions = []
    names, weights = zip(*KINDS.items(), strict=True)
    for index in range(uploads):
        client = index % clients
        user = client % users
        kind = rng.choices(names, weights)[0]
        own = sent_by[user]
        others = [item for u, item in all_sent if u != user]
        if kind == "own duplicate" and not own:
            kind = "new"
        if kind == "other user's content" and not others:
            kind = "new"
        if kind == "new":
            files: tuple[Item, ...] = (new_item(),)
        elif kind == "own duplicate":
            files = (rng.choice(own),)
        elif kind == "other user's content":
            files = (rng.choice(others),)
        elif kind == "two files":
            files = (new_item(), rng.choice(own) if own else new_item())
        elif kind == "invalid":
            files = (invalid_item(),)
        else:  # a valid new file sent together with a broken one: nothing is stored
            files = (new_item(), invalid_item())
        valid = kind not in ("invalid", "valid with invalid")
        if valid:
            for item in files:
                sent_by[user].append(item)
                all_sent.append((user, item))
        submissions.append(Submission(client, user, kind, files, valid))

    plan = Plan(submissions)
    for sub in submissions:
        if sub.valid:
            for item in sub.files:
                plan.rows.add((sub.user, item.sha256))
                plan.contents[item.sha256] = item.extension
    for sub in submissions:
        if not sub.valid:
            plan.never_stored |= {i.sha256 for i in sub.files if i.sha256 not in plan.contents}
    return plan


# -- processes -------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            parents[ppid].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def memory_kb(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


class MemorySampler(threading.Thread):
    """Samples the summed VmHWM and VmRSS of each watched process tree."""

    def __init__(self, roots: dict[str, int], interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.interval = interval
        self.peak_hwm: dict[str, int] = dict.fromkeys(roots, 0)
        self.peak_rss: dict[str, int] = dict.fromkeys(roots, 0)
        self.processes: dict[str, int] = dict.fromkeys(roots, 0)
        self.halt = threading.Event()

    def sample(self) -> None:
        for name, root in self.roots.items():
            pids = process_tree(root)
            readings = [memory_kb(pid) for pid in pids]
            hwm = sum(r.get("VmHWM", 0) for r in readings)
            rss = sum(r.get("VmRSS", 0) for r in readings)
            self.peak_hwm[name] = max(self.peak_hwm[name], hwm)
            self.peak_rss[name] = max(self.peak_rss[name], rss)
            self.processes[name] = max(self.processes[name], len(pids))

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.sample()


# -- services of this machine -----------------------------------------------------------------


def forget_redis_keys(marker: str) -> int:
    return services.forget_redis_keys(REDIS_URL, f"*{marker}*")


def preflight() -> list[str]:
    problems = []
    for module in ("gunicorn", "celery", "requests", "psycopg", "redis", "PIL"):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"{module} is not installed (pip install -e '.[test]' gunicorn)")
    if problems:
        return problems
    import psycopg
    import redis

    try:
        psycopg.connect(**PG, dbname="postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        problems.append(f"PostgreSQL is not reachable at {PG['host']}:{PG['port']}: {exc}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return problems


# -- the clients ------------------------------------------------------------------------------


@dataclass
class Answer:
    submission: Submission
    status: int  # 0: no answer (connection error)
    body: Any
    seconds: float
    error: str = ""


def log_in(base: str, cookie: tuple[str, str], csrf_cookie: str) -> Any:
    import requests

    http = requests.Session()
    http.cookies.set(*cookie)
    page = http.get(f"{base}/upload-image/", headers={"Connection": "close"}, timeout=HTTP_TIMEOUT)
    page.raise_for_status()
    if csrf_cookie not in http.cookies:
        raise RuntimeError("the upload page set no CSRF cookie")
    return http


def run_client(
    base: str, http: Any, csrf_cookie: str, work: list[Submission], answers: list[Answer]
) -> None:
    import requests

    types = {"jpg": "image/jpeg", "png": "image/png", "": "image/jpeg"}
    for sub in work:
        files = [("images", (f.name, f.data, types[f.extension])) for f in sub.files]
        started = time.perf_counter()
        try:
            # One connection per request: no keep-alive connection the server may close
            # between two requests (a reset POST is never retried).
            response = http.post(
                f"{base}/api/images/",
                files=files,
                headers={"X-CSRFToken": http.cookies[csrf_cookie], "Connection": "close"},
                timeout=HTTP_TIMEOUT,
            )
        except requests.RequestException as exc:
            answers.append(Answer(sub, 0, None, time.perf_counter() - started, repr(exc)))
            continue
        seconds = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        answers.append(Answer(sub, response.status_code, body, seconds))


# -- checks -----------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def check_answers(answers: list[Answer], user_ids: dict[int, int]) -> list[str]:
    failures = []
    created: dict[tuple[int, str], list[int]] = defaultdict(list)
    ids: dict[tuple[int, str], set[int]] = defaultdict(set)
    for a in answers:
        sub = a.submission
        if a.status == 0:
            failures.append(f"no answer to a {sub.kind!r} upload: {a.error}")
            continue
        if not sub.valid:
            if a.status != 400:
                failures.append(f"{sub.kind!r} upload answered {a.status}, not 400: {a.body}")
            continue
        if a.status not in (200, 201) or not isinstance(a.body, dict):
            failures.append(f"{sub.kind!r} upload answered {a.status}: {str(a.body)[:300]}")
            continue
        items = a.body.get("images", [])
        if [i["md5"] for i in items] != [
            hashlib.md5(f.data, usedforsecurity=False).hexdigest() for f in sub.files
        ]:
            failures.append(f"{sub.kind!r} upload answered other images: {items}")
            continue
        if (a.status == 201) != any(not i["duplicate"] for i in items):
            failures.append(f"status {a.status} does not match the items {items}")
        seen_in_request: set[str] = set()
        for file, item in zip(sub.files, items, strict=True):
            key = (sub.user, file.sha256)
            ids[key].add(item["id"])
            if not item["duplicate"]:
                if file.sha256 in seen_in_request:
                    failures.append(f"a second copy in one submission was not a duplicate: {item}")
                created[key].append(item["id"])
            seen_in_request.add(file.sha256)
    for key, found in ids.items():
        if len(found) != 1:
            failures.append(f"user {key[0]}'s content {key[1][:12]} got several ids: {found}")
        if len(created.get(key, [])) != 1:
            failures.append(
                f"user {key[0]}'s content {key[1][:12]} was created {len(created.get(key, []))}"
                " times (must be exactly once)"
            )
    return failures


def check_storage(plan: Plan, user_ids: dict[int, int], media: Path) -> tuple[list[str], dict]:
    from django_image_sync.models import UploadedImage, original_name

    failures = []
    rows = list(UploadedImage.objects.all())
    by_pk = {u: i for i, u in user_ids.items()}
    found = {(by_pk.get(r.owner_id, -1), r.sha256) for r in rows}
    if len(rows) != len(plan.rows) or found != plan.rows:
        failures.append(
            f"{len(rows)} rows, expected {len(plan.rows)}; missing {len(plan.rows - found)},"
            f" unexpected {len(found - plan.rows)}"
        )
    statuses = Counter(r.status for r in rows)
    if statuses.get("done", 0) != len(rows):
        failed = [f"{r.pk}: {r.error}" for r in rows if r.status == "failed"][:5]
        failures.append(f"not every image is done: {dict(statuses)}; failed: {failed}")
    files = {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()}
    originals = {original_name(sha, ext) for sha, ext in plan.contents.items()}
    resized = {r.resized.name for r in rows if r.resized}
    if len(resized) != len(plan.contents):
        failures.append(f"{len(resized)} resized files in use, expected {len(plan.contents)}")
    expected = originals | resized
    if files != expected:
        failures.append(
            f"{len(files)} stored files, expected {len(expected)}: missing"
            f" {sorted(expected - files)[:5]}, orphaned {sorted(files - expected)[:5]}"
        )
    leaked = {r.sha256 for r in rows} & plan.never_stored
    if leaked:
        failures.append(f"content of refused submissions was stored: {sorted(leaked)[:5]}")
    # Every stored original holds exactly the bytes its name says (no partial write).
    damaged = [
        name
        for name in sorted(originals & files)
        if hashlib.sha256((media / name).read_bytes()).hexdigest() != Path(name).stem
    ]
    if damaged:
        failures.append(f"{len(damaged)} stored originals differ from what was sent: {damaged[:5]}")
    figures = {
        "rows": len(rows),
        "originals": len(files & originals),
        "resized_files": len(files - originals),
        "statuses": dict(statuses),
    }
    return failures, figures


# -- the run ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=1000, help="submissions to send")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (2 per user)")
    parser.add_argument("--server-workers", type=int, default=4, help="gunicorn processes")
    parser.add_argument("--server-threads", type=int, default=4, help="threads per process")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery processes")
    parser.add_argument(
        "--max-worker-mb",
        type=float,
        help="cap on the worker's peak memory (sum of VmHWM of its processes); default"
        f" {WORKER_BASE_MB:.0f} + {WORKER_PER_PROCESS_MB:.0f} per --worker-concurrency",
    )
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and logs")
    args = parser.parse_args(argv)
    if args.max_worker_mb is None:
        args.max_worker_mb = WORKER_BASE_MB + WORKER_PER_PROCESS_MB * args.worker_concurrency
    if not 1 <= args.uploads <= 100_000 or not 1 <= args.clients <= 256:
        parser.error("--uploads must be 1-100000 and --clients 1-256")
    return args


def run_environment(run_id: str, scratch: Path) -> dict[str, str]:
    """What the soak's own process, gunicorn and the worker all run with."""
    return {
        "TEST_DB": "postgres",
        "IMAGE_SYNC_TEST_RUN": run_id,
        "IMAGE_SYNC_TEST_SCRATCH": str(scratch),
        "IMAGE_SYNC_TEST_WORKER": "1",  # use the database NAME the settings derive from RUN_ID
        "IMAGE_SYNC_TEST_REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }


def create_users(count: int) -> tuple[dict[int, int], dict[int, tuple[str, str]]]:
    """``count`` users, each with a logged-in session: their ids and session cookies."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    user_ids: dict[int, int] = {}
    cookies: dict[int, tuple[str, str]] = {}
    for index in range(count):
        user = User.objects.create_user(f"soak{index}", password=secrets.token_hex(8))
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        user_ids[index] = user.pk
        cookies[index] = (settings.SESSION_COOKIE_NAME, session.session_key or "")
    return user_ids, cookies


def start_site(
    args: argparse.Namespace,
    env: dict[str, str],
    scratch: Path,
    marker: str,
    running: list[Service],
) -> tuple[Service, Service, str]:
    """gunicorn and one Celery worker, both answering: ``(web, worker, base URL)``.

    Each is added to ``running`` as soon as it starts, for the caller to stop."""
    import requests
    from gunicorn.config import KNOWN_SETTINGS

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flags = {flag for s in KNOWN_SETTINGS for flag in s.cli or ()}
    web = Service(
        "gunicorn",
        [
            *(sys.executable, "-m", "gunicorn", "tests.wsgi:application"),
            *("--bind", f"127.0.0.1:{port}", "--workers", str(args.server_workers)),
            *("--worker-class", "gthread", "--threads", str(args.server_threads)),
            *("--timeout", "120", "--graceful-timeout", "10"),
            *("--access-logfile", "-", "--error-logfile", "-"),
            *(["--no-control-socket"] if "--no-control-socket" in flags else []),
        ],
        cwd=REPO,
        env=env,
        log=scratch / "gunicorn.log",
        grace=30,
    )
    running.append(web)
    worker = Service(
        "worker",
        [
            *(sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker"),
            *("--loglevel=INFO", f"--concurrency={args.worker_concurrency}"),
            *("--pool=prefork", "--without-gossip", "--without-mingle"),
            *("--without-heartbeat", "-Q", marker, "-n", f"{marker}@%h"),
        ],
        cwd=REPO,
        env=env,
        log=scratch / "worker.log",
        grace=30,
    )
    running.append(worker)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for service in (web, worker):
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.output()[-3000:]}")
        ready = " ready." in worker.output()
        with contextlib.suppress(requests.RequestException):
            ready = ready and requests.get(f"{base}/admin/login/", timeout=2).ok
        if ready:
            return web, worker, base
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn or the worker did not start in time")
        time.sleep(0.2)


def send_plan(
    plan: Plan, base: str, cookies: dict[int, tuple[str, str]], clients: int
) -> tuple[list[Answer], float]:
    """Every client sends its submissions at once; ``(answers, seconds it took)``."""
    from django.conf import settings

    users = len(cookies)
    sessions = [log_in(base, cookies[c % users], settings.CSRF_COOKIE_NAME) for c in range(clients)]
    work: dict[int, list[Submission]] = defaultdict(list)
    for sub in plan.submissions:
        work[sub.client].append(sub)
    answers: list[Answer] = []
    threads = [
        threading.Thread(
            target=run_client,
            args=(base, sessions[c], settings.CSRF_COOKIE_NAME, work[c], answers),
        )
        for c in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    per_client = max(len(w) for w in work.values())
    for thread in threads:
        thread.join(per_client * HTTP_TIMEOUT + 60)
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("a client did not finish")
    return answers, time.perf_counter() - started


def wait_for_drain(worker: Service, timeout: float) -> float | None:
    """Seconds until no image is left pending or processing; None if not in ``timeout``."""
    from django_image_sync.models import UploadedImage

    start = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not UploadedImage.objects.exclude(status__in=("done", "failed")).count():
            return time.perf_counter() - start
        if not worker.alive():
            return None
        time.sleep(0.25)
    return None


def answer_figures(answers: list[Answer], sending: float) -> dict[str, Any]:
    latencies = [a.seconds for a in answers if a.status]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for a in answers:
        if a.status:
            by_kind[a.submission.kind].append(a.seconds)
    return {
        "uploads": len(answers),
        "answers_by_status": dict(sorted(Counter(a.status for a in answers).items())),
        "unexpected_answers": sum(
            1
            for a in answers
            if a.status == 0
            or (a.submission.valid and a.status not in (200, 201))
            or (not a.submission.valid and a.status != 400)
        ),
        "sending_seconds": round(sending, 2),
        "requests_per_second": round(len(answers) / sending, 1),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "latency_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "latency_max_ms": round(max(latencies, default=0) * 1000, 1),
        "latency_p50_ms_by_kind": {
            kind: round(statistics.median(v) * 1000, 1) for kind, v in by_kind.items()
        },
    }


def soak(
    args: argparse.Namespace, plan: Plan, env: dict[str, str], scratch: Path, marker: str
) -> tuple[list[str], dict[str, Any]]:
    """Run the site, send the plan, wait for the worker, check everything: (failures, figures)."""
    from django.conf import settings
    from django.core.management import call_command

    from django_image_sync.models import UploadedImage

    failures: list[str] = []
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    running: list[Service] = []
    try:
        with postgres_database(settings.DATABASES["default"]["NAME"]):
            call_command("migrate", verbosity=0, interactive=False)
            users = max(1, args.clients // 2)
            user_ids, cookies = create_users(users)
            # The run's queue is its marker (asserted in main()).
            web, worker, base = start_site(args, env, scratch, marker, running)
            sampler = MemorySampler({"worker": worker.process.pid, "server": web.process.pid})
            sampler.sample()
            idle_worker_kb = sampler.peak_hwm["worker"]
            sampler.start()

            answers, sending = send_plan(plan, base, cookies, args.clients)
            backlog = UploadedImage.objects.exclude(status="done").count()
            drained = wait_for_drain(worker, args.drain_timeout)
            sampler.halt.set()
            sampler.join(5)
            sampler.sample()
            if drained is None:
                failures.append(
                    f"the backlog did not drain in {args.drain_timeout:.0f} s"
                    f" ({UploadedImage.objects.exclude(status='done').count()} images left)"
                )

            failures += check_answers(answers, user_ids)
            storage_failures, storage = check_storage(plan, user_ids, media)
            failures += storage_failures
            worker_mb = sampler.peak_hwm["worker"] / 1024
            if worker_mb > args.max_worker_mb:
                failures.append(
                    f"worker peak memory {worker_mb:.0f} MB is over {args.max_worker_mb:.0f} MB"
                )
            for service in running:
                if not service.alive():
                    failures.append(f"{service.name} died: {service.output()[-2000:]}")
            web_log, worker_log = web.output(), worker.output()
            if "Traceback" in web_log:
                failures.append("gunicorn logged a traceback (see its log, kept with --keep)")
            figures = {
                "clients": args.clients,
                "users": users,
                **answer_figures(answers, sending),
                "backlog_when_sending_ended": backlog,
                "drain_seconds": None if drained is None else round(drained, 2),
                "worker_concurrency": args.worker_concurrency,
                "worker_processes": sampler.processes["worker"],
                "worker_idle_hwm_mb": round(idle_worker_kb / 1024, 1),
                "worker_peak_hwm_mb": round(worker_mb, 1),
                "worker_peak_rss_mb": round(sampler.peak_rss["worker"] / 1024, 1),
                "worker_cap_mb": args.max_worker_mb,
                "server_processes": sampler.processes["server"],
                "server_peak_hwm_mb": round(sampler.peak_hwm["server"] / 1024, 1),
                "incomplete_file_replacements": web_log.count("replacing incomplete file"),
                "worker_retries": worker_log.count(" retry in "),
                **storage,
                "expected_rows": len(plan.rows),
                "expected_contents": len(plan.contents),
            }
            return failures, figures
    finally:
        for service in running:
            service.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problems = preflight()
    if problems:
        print("soak: cannot run:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2

    run_id = f"soak_{os.getpid()}_{secrets.token_hex(3)}"
    scratch = Path(tempfile.mkdtemp(prefix=f"image-sync-{run_id}-"))
    env_update = run_environment(run_id, scratch)
    os.environ.update(env_update)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings

    marker = f"image-sync-test-{run_id}"
    assert marker == settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE

    t0 = time.perf_counter()
    plan = make_plan(args.uploads, args.clients, args.seed)
    plan_seconds = time.perf_counter() - t0
    sent_bytes = sum(len(f.data) for s in plan.submissions for f in s.files)
    print(
        f"soak: {run_id}: {len(plan.submissions)} submissions ({sent_bytes / 1e6:.0f} MB) from"
        f" {args.clients} clients; planned in {plan_seconds:.1f} s;"
        f" {dict(Counter(s.kind for s in plan.submissions))}",
        flush=True,
    )

    figures: dict[str, Any] = {
        "run": run_id,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "command": " ".join(["scripts/soak", *(argv if argv is not None else sys.argv[1:])]),
        "bytes_sent": sent_bytes,
    }
    failures: list[str] = []
    removed = 0
    try:
        run_failures, run_figures = soak(args, plan, {**os.environ, **env_update}, scratch, marker)
        failures += run_failures
        figures.update(run_figures)
    except Exception as exc:
        failures.append(f"the run broke: {exc!r}")
    finally:
        try:
            removed = forget_redis_keys(marker)
        except Exception as exc:
            failures.append(f"could not remove this run's Redis keys ({marker}*): {exc!r}")
        if args.keep:
            print(f"soak: logs and media kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    figures["redis_keys_removed"] = removed
    figures["failures"] = failures
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if failures:
        print("soak: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("soak: all checks passed")
    return 0


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpus} CPUs (nproc), {model or platform.processor()}{mem}, {platform.system()}"


if __name__ == "__main__":
    sys.exit(main())
