"""Reading rows of the decoded cache: positioned reads against a mapping of the file.

The search's trials read their batches from a cache file (``proxy_train.cache.rows``). Two
ways to read it, on caches of different sizes (random 64-px rows, as many as the folder they
stand for), each in a fresh process doing what one proxy training does (3 epochs of 24
batches of 32 random training rows, each epoch followed by an evaluation of the whole minival
split, its size by the default rule, in batches of 256):

* ``pread``: what the project does, ``CachedRows`` (``os.preadv`` into the batch);
* ``mmap``: the file mapped with ``numpy.memmap`` and rows gathered with
  ``torch.index_select``, the way the cache was first read.

Recorded per size and way: rows read per second, and the growth of the process's
file-backed resident memory (``RssFile``) and of its peak RSS (``VmHWM``) over the reads
(target, the data-at-scale issue's: a trial's peak at 100,000 images <= 1.2x its peak at
10,000). The file's pages are in the page cache for both ways (warm): the difference is what
each process counts as its own.

    python bench/cache_reads.py --sizes 10000 100000 --out bench/results/cache_reads.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe, load, now  # noqa: E402

SIZE, EPOCHS, STEPS, BATCH, EVAL_BATCH = 64, 3, 24, 32, 256
WAYS = ("pread", "mmap")


def make_cache(folder: Path, rows: int) -> None:
    import numpy as np

    from proxy_train.cache.manifest import IMAGES, LABELS, Manifest

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(folder / IMAGES, "wb") as f:
        for start in range(0, rows, 4096):
            count = min(4096, rows - start)
            f.write(rng.integers(0, 256, count * 3 * SIZE * SIZE, dtype=np.uint8).tobytes())
    np.save(folder / LABELS, np.arange(rows, dtype=np.int64) % 10)
    Manifest(source=f"bench:{rows}", fingerprint="bench", resolution=SIZE, crop="center",
             class_names=[str(i) for i in range(10)], rows=rows, train_rows=rows,
             selection="all").write(folder)


def child(folder: str, way: str) -> None:
    """One proxy training's reads of the cache in ``folder``; prints one JSON line."""
    import numpy as np
    import torch

    from proxy_train.cache.manifest import IMAGES
    from proxy_train.cache.rows import CachedRows, CacheRef, open_cache
    from proxy_train.splits import default_minival_fraction

    torch.set_num_threads(1)
    cache = open_cache(Path(folder))
    rows = cache.manifest.rows
    order = np.random.default_rng(1).permutation(rows)
    minival_rows = max(1, round(rows * default_minival_fraction(rows)))
    train, minival = order[minival_rows:], np.sort(order[:minival_rows])
    if way == "pread":
        ref = CacheRef(folder, "bench", f"bench:{rows}", {"resolution": SIZE})
        train_images, minival_images = CachedRows(ref, train, cache), CachedRows(ref, minival, cache)

        def gather(images: Any, index: torch.Tensor) -> torch.Tensor:
            return images[index]
    else:
        mapped = torch.from_numpy(np.memmap(Path(folder) / IMAGES, dtype=np.uint8, mode="c",
                                            shape=(rows, 3, SIZE, SIZE)))
        train_images, minival_images = torch.from_numpy(train), torch.from_numpy(minival)

        def gather(images: Any, index: torch.Tensor) -> torch.Tensor:
            return torch.index_select(mapped, 0, images[index])
    before = _status()
    generator = torch.Generator().manual_seed(2)
    count, started = 0, time.perf_counter()
    for _ in range(EPOCHS):
        for _ in range(STEPS):
            count += len(gather(train_images, torch.randint(0, len(train), (BATCH,),
                                                             generator=generator)))
        for start in range(0, minival_rows, EVAL_BATCH):
            index = torch.arange(start, min(start + EVAL_BATCH, minival_rows))
            count += len(gather(minival_images, index))
    seconds = time.perf_counter() - started
    after = _status()
    print(json.dumps({"rows": rows, "way": way, "minival": minival_rows, "rows_read": count,
                      "rows_per_s": count / seconds,
                      "rss_file_growth_mb": (after["RssFile"] - before["RssFile"]) / 1024,
                      "peak_before_mb": before["VmHWM"] / 1024,
                      "peak_mb": after["VmHWM"] / 1024}))


def _status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssFile", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def report(results: list[dict[str, Any]], command: str) -> str:
    lines = ["# Reading the decoded cache: positioned reads against a mapping", "",
             f"- machine: {describe()}; load while measured: {load()}", f"- date: {now()}",
             f"- command: `{command}`",
             f"- workload per process: {EPOCHS} epochs of {STEPS} batches of {BATCH} random "
             f"training rows, each followed by the whole minival in batches of {EVAL_BATCH}; "
             f"{SIZE}-px rows, the file in the page cache", "",
             "| images | minival | way | rows/s | RssFile growth MB | peak RSS MB |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['minival']:,} | {r['way']} | {r['rows_per_s']:,.0f} "
                     f"| {r['rss_file_growth_mb']:.1f} | {r['peak_mb']:.0f} |")
    sizes = sorted({r["rows"] for r in results})
    peak = {(r["rows"], r["way"]): r["peak_mb"] for r in results}
    speed = {(r["rows"], r["way"]): r["rows_per_s"] for r in results}
    lines.append("")
    for way in WAYS:
        lines.append(f"- {way}: peak RSS at {sizes[-1]:,} images / at {sizes[0]:,}: "
                     f"{peak[sizes[-1], way] / peak[sizes[0], way]:.2f}x (target <= 1.2x)")
    for size in sizes:
        lines.append(f"- {size:,} images: pread reads {speed[size, 'pread'] / speed[size, 'mmap']:.1f}x"
                     f" the rows per second of the mapping")
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way, alternated")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="effnas-cache-reads-") as work:
        for size in args.sizes:
            folder = Path(work) / f"c{size}"
            make_cache(folder, size)
            runs: dict[str, list[dict[str, Any]]] = {w: [] for w in WAYS}
            for repeat in range(args.repeats):
                for way in WAYS if repeat % 2 == 0 else WAYS[::-1]:
                    out = subprocess.run([sys.executable, __file__, "child", str(folder), way],
                                         capture_output=True, text=True, check=True)
                    runs[way].append(json.loads(out.stdout.splitlines()[-1]))
                    print(out.stdout.strip(), flush=True)
            for way in WAYS:  # the median run by speed; memory is the same every run
                ordered = sorted(runs[way], key=lambda r: r["rows_per_s"])
                results.append(ordered[len(ordered) // 2])
    text = report(results, "python " + " ".join(["bench/cache_reads.py", *sys.argv[1:]]))
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
