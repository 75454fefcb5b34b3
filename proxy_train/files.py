"""Writing a file so that readers see the old or the new contents, never a half-written file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from proxy_train.errors import DataError


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, fsync it, then replace
    ``path`` with it (parents are created). On any error the temporary file is removed and
    ``path`` is untouched. Returns ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make the result private to this user
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


__all__ = ["atomic_write"]


def load_torch_file(path: str | os.PathLike[str], *, kind: str, file_format: str,
                    version: int) -> dict[str, Any]:
    """Read one of our ``torch.save`` files (plain dicts, loaded with ``weights_only=True``)
    and check its ``format`` and ``version``: a missing, unreadable or foreign file raises
    ``DataError`` naming ``kind`` (``model file``, ``checkpoint``)."""
    import torch  # imported here: atomic_write alone must not pull torch in

    source = Path(path)
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{kind} {str(source)!r} not found") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(f"{source} is not a readable {kind}: {type(exc).__name__}: "
                        f"{first}") from None
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise DataError(f"{source} is not an effnas {kind} (no format {file_format!r})")
    if payload.get("version") != version:
        raise DataError(f"{source}: {kind} version {payload.get('version')!r} not "
                        f"supported; this version reads {version}")
    return payload
