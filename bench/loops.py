"""The worker part's baselines: ``python -m bench.loops METHOD OUTDIR FILE [FILE ...]``.

A plain single-threaded loop over the files, in one fresh process: ``pyvips``
(``pyvips.Image.thumbnail`` to fit 1920x1080, then ``jpegsave`` q85, libvips'
cache off) or ``naive`` (Pillow: open, exif_transpose, resize LANCZOS to fit,
save JPEG q85). Each output is written to OUTDIR, as the worker writes its own
to storage. Prints one JSON line: the seconds from the start of the first image
to the end of the last, from the end of the first to the end of the last
(``after_first``: the images after the first), and the count.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bench.methods import BOX_DEFAULT, naive, pyvips_setup, pyvips_thumbnail


def main(argv: list[str]) -> int:
    method, outdir, *files = argv
    run = {"pyvips": pyvips_thumbnail, "naive": naive}[method]
    if method == "pyvips":
        pyvips_setup()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    first_written = start
    for index, name in enumerate(files):
        data, _ = run(Path(name), BOX_DEFAULT, False)
        (out / f"{index}.jpg").write_bytes(data)
        if not index:
            first_written = time.perf_counter()
    end = time.perf_counter()
    timing = {"seconds": end - start, "after_first": end - first_written, "count": len(files)}
    print(json.dumps(timing))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
