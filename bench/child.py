"""One measurement in a fresh process: ``python -m bench.child METHOD IMAGE OUT REPEATS WARMUP``.

A fresh process per method and image keeps peak memory honest (nothing left over
from another method) and loads only what the method needs. Prints one JSON line:
the times of each repeat in seconds, the resident set before the first run
(``rss_base``, after imports) and its peak (``rss_peak``), in bytes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.methods import METHODS


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    name, image, out, repeats, warmup = argv
    method = METHODS[name]
    box = (1920, 1080)
    # Load every module the method will use before measuring the baseline.
    if name == "pyvips":
        import pyvips  # noqa: F401
    else:
        from PIL import Image, JpegImagePlugin, PngImagePlugin  # noqa: F401

        if name == "ours":
            import django_image_sync.processing  # noqa: F401
        elif name == "ours-vips":
            from django_image_sync.processing.backends import vips  # noqa: F401 - pyvips and processing too
    if method.setup is not None:
        method.setup()
    path = Path(image)
    rss_base = _status_kib("VmRSS") * 1024
    times = []
    data, size = b"", (0, 0)
    for index in range(int(warmup) + int(repeats)):
        start = time.perf_counter()
        data, size = method.run(path, box, False)
        elapsed = time.perf_counter() - start
        if index >= int(warmup):
            times.append(elapsed)
    Path(out).write_bytes(data)
    # Once more, losslessly, to judge the resampling apart from JPEG's loss.
    lossless, _ = method.run(path, box, True)
    Path(out).with_suffix(".png").write_bytes(lossless)
    result = {
        "times": times,
        "rss_base": rss_base,
        "rss_peak": _status_kib("VmHWM") * 1024,
        "size": list(size),
        "bytes": len(data),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
