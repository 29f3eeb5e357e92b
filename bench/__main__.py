"""Run the benchmark: ``python -m bench [--quick] [--only PARTS] [--sweep]`` (or ``bench/run``).

Prints the machine, one row per resize method and image, the request-path,
rendering and worker measurements, the worker on a mix of camera photos against
plain pyvips and Pillow loops (issue 12), and the goals with PASS/MISS.
The renditions part (``--only renditions``, see ``bench/renditions.py``) is not
in the default set: it prints its own tables and goals.
Every ratio compares measurements taken in this same run on the same files.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.images import camera_images, corpus_images, generated_images
from bench.methods import METHODS, RECOMMENDED

PARTS = ("resize", "upload", "gallery", "workers", "mix", "profile", "renditions")
DEFAULT_PARTS = ("resize", "upload", "gallery", "workers", "mix")
BASELINES = ["naive", "pyvips", "ours", "ours-vips"]


def machine() -> dict[str, str]:
    import django
    import PIL
    from PIL import features

    info = {
        "cpus": str(os.cpu_count()),
        "cpu": "unknown",
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "libjpeg-turbo": str(features.version("libjpeg_turbo")),
        "zlib": str(features.version("zlib_ng") or features.version("zlib")),
        "django": django.__version__,
        "os": platform.platform(),
    }
    try:
        import pyvips

        libvips = ".".join(str(pyvips.version(i)) for i in range(3))
        info["pyvips"] = f"{pyvips.__version__} (libvips {libvips})"
    except ImportError:
        info["pyvips"] = "not installed"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def methods_for(quick: bool) -> dict[str, list[str]]:
    if quick:
        return {"JPEG": [*BASELINES, RECOMMENDED], "PNG": list(BASELINES)}
    chosen: dict[str, list[str]] = {"JPEG": list(BASELINES), "PNG": list(BASELINES)}
    for method in METHODS.values():
        if method.kind == "variant":
            for fmt in method.formats:
                chosen[fmt].append(method.name)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and methods")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_PARTS),
        help=f"comma-separated parts of {','.join(PARTS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="renditions: also sweep AVIF/WebP settings (slow)"
    )
    parser.add_argument("--no-corpus", action="store_true", help="skip ../shared/corpus")
    parser.add_argument("--methods", help="comma-separated resize methods (default: by mode)")
    parser.add_argument("--images", help="comma-separated image keys, e.g. jpeg-12mp,jpeg-24mp")
    parser.add_argument("--repeats", type=int, help="timed repeats per process")
    parser.add_argument(
        "--rounds", type=int, help="fresh processes per method and image; rounds of the mix"
    )
    parser.add_argument("--mix-copies", type=int, help="mix: copies of each photo in the backlog")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"django-image-sync-bench-{os.getuid()}",
        help="cache of generated images and outputs (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if args.sweep and "renditions" not in parts:
        parts.append("renditions")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    quick = args.quick
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    info = machine()
    info["load average at start"] = loadavg()
    info["command"] = " ".join(["bench/run", *(argv if argv is not None else sys.argv[1:])])

    def note(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    results = report.Results()
    if "resize" in parts:
        from bench import resize

        note("generating test images (cached after the first run)")
        images = generated_images(workdir)
        if not args.no_corpus:
            images += corpus_images(workdir)
        if args.images:
            keys = [k.strip() for k in args.images.split(",")]
            images = [im for im in images if im.key in keys]
        chosen = methods_for(quick)
        if args.methods:
            names = [n.strip() for n in args.methods.split(",") if n.strip()]
            missing = [n for n in names if n not in METHODS]
            if missing:
                parser.error(f"unknown methods: {', '.join(missing)}")
            chosen = {
                fmt: [n for n in names if fmt in METHODS[n].formats] for fmt in ("JPEG", "PNG")
            }
        note("resize: one fresh process per method and image")
        results.resize = resize.measure(
            images,
            chosen,
            repeats=args.repeats or (3 if quick else 5),
            warmup=1,
            rounds=args.rounds or (1 if quick else 2),
            workdir=workdir,
        )
        if not quick and not args.images:
            # The camera mix's sizes and shapes (issue 12), against the baselines only.
            note("resize: the camera mix's sizes, baselines only")
            results.resize += resize.measure(
                camera_images(workdir, corpus=False),
                {"JPEG": [m for m in BASELINES if m in chosen["JPEG"]]},
                repeats=args.repeats or 5,
                warmup=1,
                rounds=args.rounds or 2,
                workdir=workdir,
            )

    if "renditions" in parts:
        from bench import renditions

        note("renditions: worker cost, bytes and quality of each width and format")
        results.renditions = renditions.measure(
            workdir,
            quick=quick,
            corpus=not args.no_corpus,
            sweep=args.sweep,
            repeats=args.repeats,
            note=note,
        )

    web_parts = [p for p in parts if p not in ("resize", "renditions")]
    if web_parts:
        from bench import web

        with web.site(workdir) as s:
            if "upload" in parts:
                note("upload: gunicorn, 2 sync workers, concurrent clients")
                results.upload = web.upload_benchmark(
                    s,
                    workdir,
                    requests_per_round=12 if quick else 40,
                    rounds=1 if quick else 2,
                    clients=4,
                    sequential=5 if quick else 15,
                )
            if "gallery" in parts:
                note("gallery: 50 rows, Django test client")
                results.gallery = web.gallery_benchmark(s, 40 if quick else 200)
            if "workers" in parts:
                note("workers: backlog drained by 1, then 2 worker processes")
                image = generated_images(workdir)[0].path
                results.workers = web.worker_benchmark(
                    s, workdir, image, count=8 if quick else 24, rounds=1
                )
            if "profile" in parts:
                note("profile: the worker path in one process, without Celery")
                mix = camera_images(workdir, quick=quick, corpus=not args.no_corpus)
                results.profile = web.profile_worker(
                    s, workdir, [image.path for image in mix], copies=args.mix_copies or 3
                )
            if "mix" in parts:
                note("mix: camera photos of many sizes, 1 worker process against plain loops")
                mix = camera_images(workdir, quick=quick, corpus=not args.no_corpus)
                results.mix = web.camera_mix_benchmark(
                    s,
                    workdir,
                    [image.path for image in mix],
                    copies=args.mix_copies or (2 if quick else 3),
                    rounds=args.rounds or (1 if quick else 3),
                )

    info["load average at end"] = loadavg()
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    print(report.render(info, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
