"""Goals 1-3: resize speed, quality and peak memory, each method in a fresh process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench.images import REPO, TestImage
from bench.methods import METHODS, WHITE

CHILD_TIMEOUT = 300  # seconds, for one process (warm-up + repeats)


def single_thread_env() -> dict[str, str]:
    """The environment of every measuring process: one thread, this checkout first."""
    env = dict(os.environ)
    env.update(
        {
            "VIPS_CONCURRENCY": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        }
    )
    env.pop("PILLOW_BLOCKS_MAX", None)
    env.pop("PILLOW_BLOCK_SIZE", None)
    return env


@dataclass
class Measurement:
    image: TestImage
    method: str
    times: list[float] = field(default_factory=list)  # seconds per image
    rss_base: int = 0
    rss_peak: int = 0
    size: tuple[int, int] = (0, 0)
    out_bytes: int = 0
    psnr: float = float("nan")
    psnr_lossless: float = float("nan")  # the same resize, saved as PNG
    output: Path | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def min_ms(self) -> float:
        return min(self.times) * 1000

    @property
    def per_second(self) -> float:
        return 1000 / self.median_ms

    @property
    def rss_delta(self) -> int:
        """Peak memory the resize itself added over the process after imports."""
        return max(0, self.rss_peak - self.rss_base)


def run_child(
    method: str, image: TestImage, out: Path, repeats: int, warmup: int, env: dict[str, str]
) -> dict[str, object]:
    argv = [sys.executable, "-m", "bench.child", method, str(image.path), str(out)]
    argv += [str(repeats), str(warmup)]
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{method} on {image.key} failed:\n{result.stderr[-4000:]}")
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def measure(
    images: list[TestImage],
    methods_for: dict[str, list[str]],
    *,
    repeats: int,
    warmup: int,
    rounds: int,
    workdir: Path,
    progress: bool = True,
) -> list[Measurement]:
    """Every method on every image, ``rounds`` fresh processes each, interleaved.

    Rounds alternate the methods so a burst of load on this shared machine falls
    on all of them rather than on one; the timings of all rounds are pooled.
    """
    env = single_thread_env()
    outdir = workdir / "outputs"
    outdir.mkdir(parents=True, exist_ok=True)
    results: list[Measurement] = []
    for image in images:
        names = methods_for[image.format]
        found = {name: Measurement(image, name) for name in names}
        for round_index in range(rounds):
            order = names if round_index % 2 == 0 else list(reversed(names))
            for name in order:
                out = outdir / f"{image.key.replace(':', '_')}--{name.replace('/', '_')}.jpg"
                data = run_child(name, image, out, repeats, warmup, env)
                m = found[name]
                m.times += [float(t) for t in data["times"]]  # type: ignore[attr-defined]
                m.rss_base = max(m.rss_base, int(data["rss_base"]))  # type: ignore[call-overload]
                m.rss_peak = max(m.rss_peak, int(data["rss_peak"]))  # type: ignore[call-overload]
                m.size = tuple(data["size"])  # type: ignore[assignment,arg-type]
                m.out_bytes = int(data["bytes"])  # type: ignore[call-overload]
                m.output = out
                if progress:
                    print(
                        f"  {image.key:22} {name:22} round {round_index + 1}: "
                        f"median {statistics.median(data['times']) * 1000:7.1f} ms",  # type: ignore[arg-type]
                        file=sys.stderr,
                        flush=True,
                    )
        references = References(image)
        for m in found.values():
            assert m.output is not None
            reference = references.at(m.size)
            m.psnr = psnr(decode_rgb(m.output), reference)
            m.psnr_lossless = psnr(decode_rgb(m.output.with_suffix(".png")), reference)
        results += found.values()
    return results


# -- quality -----------------------------------------------------------------------------


def decode_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA"):
            canvas = Image.new("RGB", im.size, WHITE)
            canvas.paste(im.convert("RGB"), mask=im.getchannel("A"))
            im = canvas
        return np.asarray(im.convert("RGB"), dtype=np.float64)


class References:
    """Full-resolution decode (no draft) + LANCZOS to each output size: the quality bar."""

    def __init__(self, image: TestImage) -> None:
        self.image = image
        self._source: Image.Image | None = None
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def source(self) -> Image.Image:
        if self._source is None:
            with Image.open(self.image.path) as im:
                im.load()
                upright = ImageOps.exif_transpose(im)
            self._source = upright if upright.mode in ("RGB", "RGBA") else upright.convert("RGB")
        return self._source

    def at(self, size: tuple[int, int]) -> np.ndarray:
        if size not in self._cache:
            resized = self.source().resize(size, Image.Resampling.LANCZOS)
            if resized.mode == "RGBA":
                canvas = Image.new("RGB", size, WHITE)
                canvas.paste(resized.convert("RGB"), mask=resized.getchannel("A"))
                resized = canvas
            self._cache[size] = np.asarray(resized, dtype=np.float64)
        return self._cache[size]


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    if output.shape != reference.shape:
        return float("nan")
    mse = float(np.mean((output - reference) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


__all__ = ["METHODS", "Measurement", "measure", "psnr"]
