"""Decoding a source into its cache: once, in parallel, resumable, and atomic.

:func:`ensure_cache` returns the folder of a finished cache whose fingerprint is the
source's, building it first if there is none (or the source changed). A build

1. takes the cache's lock (a second process waits, then uses what the first built);
2. checks the free space (one line with the size needed when it is short) and reserves the
   whole file (``posix_fallocate``), so a full disk is found before any decoding;
3. decodes chunks of rows in worker processes (all usable cores; ``EFFNAS_DECODE_WORKERS``
   sets another number), each writing its rows into the file, with a progress bar and ETA;
   finished chunks are recorded every few seconds after the file is synced, so a killed build
   resumes where it stopped;
4. skips images that cannot be decoded (their label is -1), and refuses a source where more
   than half of the first images tried (or of all) fail;
5. writes the labels and the manifest, then renames ``NAME.partial`` to ``NAME``.

Only a folder with a manifest is ever opened: a half-built cache is never used. A refused
build and a build that ran out of space leave nothing behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from datetime import datetime, timezone
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from proxy_train.cache.decode import Chunk, decode_chunk
from proxy_train.cache.location import CACHE_ENV, cache_name
from proxy_train.cache.manifest import IMAGES, LABELS, Manifest, size_text
from proxy_train.datasets.inventory import CROP_RULE, Inventory
from proxy_train.errors import DataError
from search_space.messages import counted

Say = Callable[[str], None]
CHUNK_ROWS = 256
MAX_BAD_FRACTION = 0.5
BAD_CHECK_AFTER = 64
"""Images tried before a source that is mostly undecodable is refused."""
MARK_EVERY_S = 2.0
WORKERS_ENV = "EFFNAS_DECODE_WORKERS"
_BUILD = "build.json"
_DONE = "done.jsonl"


def ensure_cache(inventory: Inventory, resolution: int, root: Path, *,
                 image_column: str | None = None, say: Say | None = None,
                 progress: bool = False, workers: int | None = None) -> Path:
    """The folder of the finished cache of ``inventory`` at ``resolution`` under ``root``."""
    tell: Say = say if say is not None else (lambda line: None)
    final = root / cache_name(inventory, resolution)
    if _current(final, inventory):
        return final
    _make_root(root)
    with _locked(root / ".locks" / f"{final.name}.lock", tell):
        if _current(final, inventory):
            return final  # another process built it while this one waited
        if Manifest.read(final) is not None:
            tell(f"the source changed since its cache {final} was built (files added, removed "
                 "or modified): building it again")
        build = _Build(inventory, resolution, final, image_column, workers)
        build.run(tell, progress)
    return final


def _current(final: Path, inventory: Inventory) -> bool:
    manifest = Manifest.read(final)
    return manifest is not None and manifest.fingerprint == inventory.fingerprint


def _make_root(root: Path) -> None:
    try:
        (root / ".locks").mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise DataError(f"cannot write the data cache folder {root} ({exc.strerror}); point "
                        f"{CACHE_ENV}=DIR or the source option cache=DIR at a writable "
                        "folder") from None


@contextmanager
def _locked(path: Path, say: Say) -> Iterator[None]:
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process that is building the cache {path.stem} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def default_workers() -> int:
    if os.environ.get(WORKERS_ENV, "").isdigit() and int(os.environ[WORKERS_ENV]) > 0:
        return int(os.environ[WORKERS_ENV])
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def chunks_of(inventory: Inventory, out: str, resolution: int,
              image_column: str | None) -> list[Chunk]:
    """Rows in chunks of at most ``CHUNK_ROWS``; Parquet chunks never span row groups (a
    worker reads each group it touches)."""
    chunks: list[Chunk] = []
    start = 0
    items = inventory.items
    while start < len(items):
        end = min(start + CHUNK_ROWS, len(items))
        if image_column is not None:
            path, group, _ = items[start]
            end = next((i for i in range(start, end) if items[i][:2] != (path, group)), end)
        chunks.append(Chunk(out, start, resolution, items[start:end], image_column))
        start = end
    return chunks


class _Build:
    """One build of one cache (see the module docstring)."""

    def __init__(self, inventory: Inventory, resolution: int, final: Path,
                 image_column: str | None, workers: int | None) -> None:
        self.inventory = inventory
        self.resolution = resolution
        self.final = final
        self.partial = final.with_name(final.name + ".partial")
        self.image_column = image_column
        self.workers = workers or default_workers()
        self.bad: dict[int, str] = {}
        self.tried = 0
        self.done: set[int] = set()

    @property
    def need(self) -> int:
        return len(self.inventory) * 3 * self.resolution * self.resolution

    def run(self, say: Say, progress: bool) -> None:
        started = time.perf_counter()
        resumed = self._open_partial()
        try:
            self._reserve(resumed)
            chunks = chunks_of(self.inventory, str(self.partial / IMAGES), self.resolution,
                               self.image_column)
            todo = [i for i in range(len(chunks)) if i not in self.done]
            workers = 1 if len(todo) < 2 else max(1, min(self.workers, len(todo)))
            left = sum(len(chunks[i].items) for i in todo)
            say(f"decoding {left:,} images of {self.inventory.name} at {self.resolution} px "
                f"into {self.final} ({size_text(self.need)}) with {workers} process(es)"
                + (f"; resuming a build that stopped ({len(self.done)} of {len(chunks)} "
                   "chunks done)" if self.done else ""))
            self._decode(chunks, todo, workers, progress)
            self._finish(time.perf_counter() - started, say)
        except DataError:
            shutil.rmtree(self.partial, ignore_errors=True)
            raise
        except OSError as exc:
            shutil.rmtree(self.partial, ignore_errors=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._no_space() from None
            raise DataError(f"cannot write the data cache {self.partial}: {exc}") from None

    def _open_partial(self) -> bool:
        """Resume the partial build of the same rows, or start a fresh one."""
        record = {"fingerprint": self.inventory.fingerprint, "resolution": self.resolution,
                  "rows": len(self.inventory), "chunk_rows": CHUNK_ROWS}
        try:
            same = json.loads((self.partial / _BUILD).read_text("utf-8")) == record
        except (OSError, ValueError):
            same = False
        if same:
            for line in (self.partial / _DONE).read_text("utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # the last line of a build killed while it wrote it
                self.done.add(int(entry["chunk"]))
                self.bad.update({int(row): reason for row, reason in entry["bad"]})
                self.tried += int(entry["rows"])
            return True
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        (self.partial / _BUILD).write_text(json.dumps(record), "utf-8")
        (self.partial / _DONE).write_text("", "utf-8")
        return False

    def _no_space(self) -> DataError:
        free = shutil.disk_usage(self.final.parent).free
        return DataError(f"not enough disk space for the data cache in {self.final.parent}: it "
                         f"needs {size_text(self.need)}, {size_text(free)} is free; free some "
                         f"space or point {CACHE_ENV}=DIR or the source option cache=DIR at "
                         "another disk")

    def _reserve(self, resumed: bool) -> None:
        images = self.partial / IMAGES
        have = images.stat().st_blocks * 512 if resumed and images.exists() else 0
        if shutil.disk_usage(self.partial).free + have < self.need + (64 << 20):
            raise OSError(errno.ENOSPC, "no space")
        with images.open("ab") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, max(1, self.need))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                handle.truncate(self.need)  # a filesystem without fallocate

    def _decode(self, chunks: list[Chunk], todo: list[int], workers: int,
                progress: bool) -> None:
        from tqdm import tqdm

        bar = tqdm(total=len(self.inventory), initial=len(self.inventory) - sum(
            len(chunks[i].items) for i in todo), unit="img", disable=not progress,
            file=sys.stderr, dynamic_ncols=True, smoothing=0.1, desc="decoding")
        marks = _Marks(self.partial)
        try:
            for index, bad in _run_chunks(chunks, todo, workers):
                self.tried += len(chunks[index].items)
                self.bad.update(dict(bad))
                marks.add(index, bad, len(chunks[index].items))
                bar.update(len(chunks[index].items))
                self._check_bad(final=False)
            marks.flush()
        finally:
            bar.close()

    def _check_bad(self, final: bool) -> None:
        if self.tried < BAD_CHECK_AFTER and not final:
            return
        if len(self.bad) > MAX_BAD_FRACTION * self.tried:
            raise DataError(
                f"{self.inventory.name}: {len(self.bad)} of {self.tried} images tried could "
                f"not be decoded (first: {self._examples(1)[0]}); refusing a source that is "
                "mostly unreadable; images must be JPEG, PNG, WebP, BMP or TIFF files")

    def _examples(self, count: int) -> list[str]:
        rows = sorted(self.bad)[:count]
        return [f"{self.inventory.display(self.inventory.items[r])} ({self.bad[r]})"
                for r in rows]

    def _finish(self, seconds: float, say: Say) -> None:
        self._check_bad(final=True)
        labels = self.inventory.labels.copy()
        labels[list(self.bad)] = -1
        self._check_classes(labels)
        np.save(self.partial / LABELS, labels)
        _sync(self.partial / IMAGES)
        Manifest(source=self.inventory.name, fingerprint=self.inventory.fingerprint,
                 resolution=self.resolution, crop=CROP_RULE,
                 class_names=list(self.inventory.class_names), rows=len(labels),
                 train_rows=self.inventory.train_rows, selection=self.inventory.selection,
                 bad=len(self.bad), bad_examples=self._examples(5), build_s=round(seconds, 1),
                 created=datetime.now(timezone.utc).isoformat()).write(self.partial)
        for name in (_BUILD, _DONE):
            (self.partial / name).unlink()
        _replace(self.partial, self.final)
        if self.bad:
            names = ", ".join(self._examples(3))
            say(f"skipped {counted(len(self.bad), 'image')} that could not be decoded: {names}"
                + (", ..." if len(self.bad) > 3 else ""))

    def _check_classes(self, labels: np.ndarray) -> None:
        train = labels[:self.inventory.train_rows]
        counts = np.bincount(train[train >= 0], minlength=len(self.inventory.class_names))
        for name, count in zip(self.inventory.class_names, counts):
            if count < 2:
                raise DataError(f"{self.inventory.name}: class {name!r} has "
                                f"{counted(int(count), 'decodable training image')} once unreadable "
                                "images are skipped; every "
                                "class needs at least 2 (first unreadable: "
                                f"{(self._examples(1) or ['none'])[0]})")


class _Marks:
    """Finished chunks, recorded every few seconds after the images are on disk."""

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self.lines: list[str] = []
        self.last = time.monotonic()

    def add(self, index: int, bad: list[tuple[int, str]], rows: int) -> None:
        self.lines.append(json.dumps({"chunk": index, "rows": rows, "bad": bad}))
        if time.monotonic() - self.last >= MARK_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self.lines:
            return
        _sync(self.partial / IMAGES)
        with (self.partial / _DONE).open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in self.lines))
            handle.flush()
            os.fsync(handle.fileno())
        self.lines = []
        self.last = time.monotonic()


def _run_chunks(chunks: list[Chunk], todo: list[int],
                workers: int) -> Iterator[tuple[int, list[tuple[int, str]]]]:
    """``(chunk index, bad rows)`` as chunks finish: in this process, or in ``workers``."""
    if workers <= 1:
        for index in todo:
            yield index, decode_chunk(chunks[index])
        return
    # fork on Linux, as torch's DataLoader: the workers start at once and run only Pillow,
    # numpy and os (no torch, no locks of the parent's threads); spawn elsewhere.
    method = "fork" if sys.platform == "linux" and "fork" in get_all_start_methods() \
        else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method),
                               initializer=signal.signal,
                               initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        waiting = list(todo)
        flying: dict[Future[list[tuple[int, str]]], int] = {}
        while waiting or flying:
            while waiting and len(flying) < 2 * workers:  # a bounded queue: stops promptly
                index = waiting.pop(0)
                flying[pool.submit(decode_chunk, chunks[index])] = index
            finished, _ = wait(list(flying), return_when=FIRST_COMPLETED)
            for future in finished:
                yield flying.pop(future), future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(partial: Path, final: Path) -> None:
    """Put the finished ``partial`` in ``final``'s place (an old cache there is removed; a
    process that has it open keeps reading its files until it lets go)."""
    old = final.with_name(f"{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CHUNK_ROWS", "MAX_BAD_FRACTION", "WORKERS_ENV", "chunks_of", "default_workers",
           "ensure_cache"]
