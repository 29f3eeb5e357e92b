"""Goals 4-6 on a real site: PostgreSQL, Redis, gunicorn and Celery workers.

One PostgreSQL database is created for the run and dropped at the end; Redis keys
carry a marker unique to the run and are deleted at the end. Only 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from bench.images import REPO, jpeg_near, with_unique_comment
from tests.support import services
from tests.support.processes import Service, free_port
from tests.support.services import PG, postgres_database

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
START_TIMEOUT = 60
HTTP_TIMEOUT = 60
DRAIN_TIMEOUT = float(os.environ.get("BENCH_DRAIN_TIMEOUT", "300"))
UPLOAD_BYTES = 4 * 1024 * 1024
BOUNDARY = "image-sync-bench-boundary-7f3a"
# A CSRF secret the clients send as cookie and header, as a browser's script would.
CSRF_TOKEN = "benchBENCHbench0123456789abcdefZ"  # noqa: S105 - not a password


@dataclass
class Site:
    """The benchmark site's environment for one run."""

    marker: str
    database: str
    media: Path
    env: dict[str, str] = field(default_factory=dict)


# -- services -----------------------------------------------------------------------------


@contextlib.contextmanager
def site(workdir: Path) -> Iterator[Site]:
    """A fresh database, media folder and Redis marker; all removed afterwards."""
    token = f"{os.getpid()}_{secrets.token_hex(3)}"
    marker = f"image-sync-bench-{token}"
    database = f"image_sync_bench_{token}"
    media = Path(tempfile.mkdtemp(prefix="media-", dir=workdir))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.site.settings",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "BENCH_DB": database,
        "BENCH_MEDIA": str(media),
        "BENCH_MARKER": marker,
        "BENCH_REDIS_URL": REDIS_URL,
        "VIPS_CONCURRENCY": "1",
        "OMP_NUM_THREADS": "1",
    }
    try:
        with postgres_database(database):
            run_checked([sys.executable, "-m", "django", "migrate", "--noinput", "-v0"], env)
            yield Site(marker, database, media, env)
    finally:
        services.forget_redis_keys(REDIS_URL, f"*{marker}*")
        remove_tree(media)


def remove_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    root.rmdir()


def run_checked(argv: list[str], env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr[-4000:]}")
    return result.stdout


# -- goal 4: the upload request path -------------------------------------------------------


def multipart(files: list[tuple[str, bytes]]) -> bytes:
    parts = []
    for name, data in files:
        head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="images"; filename="{name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        )
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def post(port: int, path: str, body: bytes) -> tuple[int, float, bytes]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Accept": "application/json",
                "Cookie": f"csrftoken={CSRF_TOKEN}",
                "X-CSRFToken": CSRF_TOKEN,
            },
        )
        response = conn.getresponse()
        payload = response.read()
        status = response.status
    finally:
        conn.close()
    return status, time.perf_counter() - start, payload


@dataclass
class LoadResult:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000


def load(
    name: str, port: int, path: str, bodies: list[bytes], clients: int, expect: int
) -> LoadResult:
    """Send every body once, ``clients`` at a time; throughput and latencies."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(enumerate(bodies))

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                _, body = queue.pop(0)
            status, elapsed, payload = post(port, path, body)
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status != expect and statuses[status] == 1:
                    print(f"  {name}: HTTP {status}: {payload[:300]!r}", file=sys.stderr)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HTTP_TIMEOUT * len(bodies))
    seconds = time.perf_counter() - start
    return LoadResult(name, len(latencies), seconds, latencies, statuses)


def count_files(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file())


def upload_benchmark(
    s: Site, workdir: Path, *, requests_per_round: int, rounds: int, clients: int, sequential: int
) -> dict[str, object]:
    """Goal 4: the app's upload API against a bare save view, under gunicorn."""
    photos = []
    for seed in (41, 42):
        path = workdir / f"upload-{seed}-v1.jpg"
        if not path.exists():
            path.write_bytes(jpeg_near((4000, 3000), seed, UPLOAD_BYTES))
        photos.append(path.read_bytes())
    counter = iter(range(1_000_000))

    def new_body() -> bytes:
        n = next(counter)
        return multipart(
            [
                (f"a{n}.jpg", with_unique_comment(photos[0], f"a{n}")),
                (f"b{n}.jpg", with_unique_comment(photos[1], f"b{n}")),
            ]
        )

    port = free_port()
    argv = [sys.executable, "-m", "gunicorn", "bench.site.wsgi:application"]
    argv += ["--bind", f"127.0.0.1:{port}", "--workers", "2", "--graceful-timeout", "5"]
    argv += ["--timeout", "120", "--error-logfile", "-"]
    web = Service("gunicorn", argv, cwd=REPO, env=s.env, log=workdir / "gunicorn.log", grace=20)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/bench/ping/")
                if conn.getresponse().status == 200:
                    break
            if not web.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{web.output()}")
            time.sleep(0.2)

        # Warm-up: imports, connections to PostgreSQL and Redis in both workers.
        load("warm", port, "/bench/bare-upload/", [new_body() for _ in range(4)], clients, 201)
        load("warm", port, "/api/images/", [new_body() for _ in range(4)], clients, 201)

        bare: list[LoadResult] = []
        new: list[LoadResult] = []
        dup: list[LoadResult] = []
        stored_by_duplicates = 0
        for _ in range(rounds):
            bodies = [new_body() for _ in range(requests_per_round)]
            bare.append(load("bare", port, "/bench/bare-upload/", bodies, clients, 201))
            bodies = [new_body() for _ in range(requests_per_round)]
            new.append(load("app-new", port, "/api/images/", bodies, clients, 201))
            before = count_files(s.media)
            dup.append(load("app-dup", port, "/api/images/", bodies, clients, 200))
            stored_by_duplicates += count_files(s.media) - before

        # One client at a time: the latency of a new upload against its duplicate,
        # and of the bare view saving the same bytes (the floor for both).
        seq_new, seq_dup, seq_bare = [], [], []
        for _ in range(sequential):
            body = new_body()
            status, elapsed, _ = post(port, "/bench/bare-upload/", body)
            assert status == 201, status
            seq_bare.append(elapsed)
            status, elapsed, _ = post(port, "/api/images/", body)
            assert status == 201, status
            seq_new.append(elapsed)
            status, elapsed, payload = post(port, "/api/images/", body)
            assert status == 200, status
            assert all(i["duplicate"] for i in json.loads(payload)["images"])
            seq_dup.append(elapsed)
        errors = "Traceback" in web.output()
    finally:
        web.stop()

    def best(results: list[LoadResult]) -> LoadResult:
        return max(results, key=lambda r: r.per_second)

    return {
        "steps_ms": request_steps(photos),
        "bare": best(bare),
        "new": best(new),
        "dup": best(dup),
        "statuses": [r.statuses for r in bare + new + dup],
        "stored_by_duplicates": stored_by_duplicates,
        "sequential_new_ms": statistics.median(seq_new) * 1000,
        "sequential_dup_ms": statistics.median(seq_dup) * 1000,
        "sequential_bare_ms": statistics.median(seq_bare) * 1000,
        "clients": clients,
        "photo_bytes": [len(p) for p in photos],
        "server_errors": errors,
    }


def request_steps(photos: list[bytes], repeats: int = 15) -> dict[str, float]:
    """The app's own per-photo work in the request, in this process: fastest of ``repeats``.

    The same functions the upload views call, on the same photos as a temporary
    file, as Django hands them over; what is left of a request is Django's and
    gunicorn's reading of the body, the database and the broker.
    """
    import hashlib

    from django_image_sync import processing

    def fastest(step: Callable[[], object]) -> float:
        step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return min(times) * 1000

    steps: dict[str, float] = {"md5": 0.0, "sha256": 0.0, "hash_file": 0.0, "inspect_image": 0.0}
    for data in photos:
        with tempfile.TemporaryFile() as fh:
            fh.write(data)
            fh.flush()
            md5 = partial(hashlib.md5, data, usedforsecurity=False)
            steps["md5"] += fastest(md5)
            steps["sha256"] += fastest(partial(hashlib.sha256, data))
            steps["hash_file"] += fastest(partial(processing.hash_file, fh))
            steps["inspect_image"] += fastest(
                partial(
                    processing.inspect_image,
                    fh,
                    allowed_formats=("JPEG", "PNG"),
                    max_pixels=50_000_000,
                )
            )
    return {name: total / len(photos) for name, total in steps.items()}


# -- goal 5: gallery and list API rendering ----------------------------------------------------


def gallery_benchmark(s: Site, repeats: int) -> dict[str, object]:
    argv = [sys.executable, "-m", "bench.site.driver", "gallery", "50", str(repeats)]
    result: dict[str, object] = json.loads(run_checked(argv, s.env).strip().splitlines()[-1])
    return result


# -- goal 6: one worker process against two -----------------------------------------------------


COUNTS_SQL = (
    "SELECT count(*) FILTER (WHERE status = 'pending'),"
    " count(*) FILTER (WHERE status IN ('done', 'failed')),"
    " count(*) FILTER (WHERE status = 'failed')"
    " FROM django_image_sync_uploadedimage WHERE original_name LIKE %s"
)

SPAN_SQL = (
    "SELECT extract(epoch FROM max(updated) - min(updated))"
    " FROM django_image_sync_uploadedimage WHERE original_name LIKE %s"
)


def drain(
    s: Site,
    workdir: Path,
    tag: str,
    count: int,
    image: Path | list[Path],
    processes: int,
    *,
    main_only: bool = False,
    backend: str = "",
    after_first: bool = False,
) -> float:
    """Queue ``count`` new images, start a worker with ``processes``; seconds to drain,
    from the first image claimed to the last one done.

    ``image``: one photo, or several taken in turn. ``main_only``: the worker
    makes the main output alone (no renditions). ``backend``: IMAGE_SYNC's
    BACKEND, if not the default. ``after_first``: from the first image done
    to the last, by the rows' own times (``updated``, set by the worker as it
    moves each to done): ``count - 1`` images, the worker process's first
    (imports, first connections) left out."""
    images = image if isinstance(image, list) else [image]
    # The uploads are made under the worker's settings, as a site's web and
    # worker processes share theirs: the worker then finds each file checked
    # against its own budgets (conf.budgets_key) and does not look again.
    env = {**s.env, "BENCH_MAIN_ONLY": "1"} if main_only else dict(s.env)
    if backend:
        env["BENCH_BACKEND"] = backend
    argv = [sys.executable, "-m", "bench.site.driver", "backlog", tag, str(count)]
    run_checked([*argv, *(str(path) for path in images)], env)
    worker_argv = [sys.executable, "-m", "celery", "-A", "bench.site.celery_app", "worker"]
    worker_argv += [f"--concurrency={processes}", "--pool=prefork", "--loglevel=INFO"]
    worker_argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    worker_argv += ["-Q", s.marker, "-n", f"{s.marker}-{tag}@%h"]
    import psycopg

    conn = psycopg.connect(**PG, dbname=s.database, autocommit=True, connect_timeout=5)
    worker = Service(
        f"worker-{tag}",
        worker_argv,
        cwd=REPO,
        env=env,
        log=workdir / f"worker-{tag}.log",
        grace=20,
    )
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        started = None
        while time.monotonic() < deadline:
            row = conn.execute(COUNTS_SQL, (f"{tag}-%",)).fetchone()
            assert row is not None
            pending, finished, failed = (int(v) for v in row)
            now = time.perf_counter()
            if started is None and pending < count:
                started = now
            if finished == count:
                if failed:
                    raise RuntimeError(f"{failed} images failed:\n{worker.output()[-4000:]}")
                if after_first:
                    span = conn.execute(SPAN_SQL, (f"{tag}-%",)).fetchone()
                    assert span is not None
                    return float(span[0])
                return now - (started or now)
            if not worker.alive():
                raise RuntimeError(f"the worker exited:\n{worker.output()[-4000:]}")
            time.sleep(0.02)
        import redis

        queued = redis.Redis.from_url(REDIS_URL, socket_timeout=5).llen(s.marker)
        raise RuntimeError(
            f"backlog {tag} not drained in {DRAIN_TIMEOUT} s: (pending, finished, failed)"
            f" = {(pending, finished, failed)}, {queued} messages queued\n"
            f"{worker.output()[-3000:]}"
        )
    finally:
        worker.stop()
        conn.close()


def worker_benchmark(
    s: Site, workdir: Path, image: Path, count: int, rounds: int
) -> dict[str, object]:
    one, two, main = [], [], []
    for index in range(rounds):
        main.append(count / drain(s, workdir, f"w0r{index}", count, image, 1, main_only=True))
        one.append(count / drain(s, workdir, f"w1r{index}", count, image, 1))
        two.append(count / drain(s, workdir, f"w2r{index}", count, image, 2))
    return {
        "main": max(main),
        "one": max(one),
        "two": max(two),
        "count": count,
        "image": image.name,
    }


# -- issue 12: the worker on a mix of camera photos against plain loops ---------------------


def loop_seconds(
    method: str, files: list[Path], workdir: Path, *, after_first: bool = False
) -> float:
    """Seconds a plain single-threaded loop (``bench.loops``) takes over ``files``;
    ``after_first``: from the first output written to the last (the others)."""
    from bench.resize import single_thread_env

    outdir = workdir / f"loop-{method}"
    argv = [sys.executable, "-m", "bench.loops", method, str(outdir), *(str(f) for f in files)]
    result = run_checked(argv, single_thread_env(), timeout=DRAIN_TIMEOUT)
    remove_tree(outdir)
    timing = json.loads(result.strip().splitlines()[-1])
    return float(timing["after_first" if after_first else "seconds"])


def camera_mix_benchmark(
    s: Site, workdir: Path, images: list[Path], copies: int, rounds: int
) -> dict[str, object]:
    """A backlog of camera photos of many sizes drained by one worker process
    (concurrency 1), main output only (on the default Pillow backend, then on
    the auto backend) and with the default renditions, against a pyvips loop
    and a naive Pillow loop over the same files in the same run.

    Each round runs the five one after the other; each keeps its fastest round.
    Every side is timed over the images after its first, as issue 12 asks ("from
    the first to the last image done"): a process's first image pays its
    imports, its first connections and libvips' start, which a long-running
    worker pays once. Images/s ratios are worker / loop (the loops' seconds
    over the worker's).
    """
    files = images * copies
    count = len(files)
    seconds: dict[str, list[float]] = {
        "main": [],
        "auto": [],
        "renditions": [],
        "pyvips": [],
        "naive": [],
    }
    for index in range(rounds):
        main = partial(drain, s, workdir, count=count, image=images, processes=1, after_first=True)
        seconds["main"].append(main(f"m0r{index}", main_only=True))
        seconds["auto"].append(main(f"m2r{index}", main_only=True, backend="auto"))
        seconds["pyvips"].append(loop_seconds("pyvips", files, workdir, after_first=True))
        seconds["naive"].append(loop_seconds("naive", files, workdir, after_first=True))
        seconds["renditions"].append(main(f"m1r{index}"))
    best = {name: min(values) for name, values in seconds.items()}
    return {
        "count": count,
        "images": [path.name for path in images],
        "timed": count - 1,
        "seconds": best,
        "all_seconds": seconds,
        "per_second": {name: (count - 1) / value for name, value in best.items()},
    }


def profile_worker(s: Site, workdir: Path, images: list[Path], copies: int) -> dict[str, object]:
    """The worker path on the camera mix in one process (``bench.site.profile``):
    main output only, then with the default renditions."""
    found: dict[str, object] = {}
    for name, env in (("main", {**s.env, "BENCH_MAIN_ONLY": "1"}), ("renditions", s.env)):
        out = workdir / f"worker-profile-{name}.txt"
        argv = [sys.executable, "-m", "bench.site.profile", str(out), str(len(images) * copies)]
        result = json.loads(
            run_checked([*argv, *(str(path) for path in images)], env).strip().splitlines()[-1]
        )
        result["cprofile"] = str(out)
        found[name] = result
    return found
