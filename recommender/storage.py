"""Atomic, lock-protected file writes and checksums.

Readers never see a half-written artifact: every file is written to a temporary sibling, flushed,
fsynced and renamed over the target (rename is atomic on POSIX within one filesystem). A failed
write raises :class:`ArtifactWriteError` naming the target, which keeps its previous content.

Temporary names carry the writer's pid (``.<name>.<pid>.<random>.tmp``, ``….staging`` for
directories), so :func:`remove_stale_temp_files` can tell the litter of a writer killed between
write and rename from the fresh temporary file of a writer that is still running.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)

TEMP_SUFFIX = ".tmp"
STAGING_SUFFIX = ".staging"
# A temporary file older than this is litter whatever pid its name holds (the pid may be reused).
STALE_TEMP_MAX_AGE_S = 3600.0


class ArtifactWriteError(OSError):
    """Writing an artifact failed (disk full, no permission, …); the target is unchanged.

    ``filename`` is the target (not the temporary file), ``errno``/``strerror`` the OS's cause.
    """


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path``.

    If ``writer`` raises, the temporary file is removed and ``path`` keeps its old content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent
        )
    except OSError as exc:
        raise _write_error(exc, target) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; artifacts are shared with workers
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _write_error(exc, target) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def _write_error(exc: OSError, target: Path) -> ArtifactWriteError:
    """``exc`` restated for ``target`` (write() errors such as ENOSPC carry no file name)."""
    if isinstance(exc, ArtifactWriteError):
        return exc
    return ArtifactWriteError(exc.errno, exc.strerror or str(exc), str(target))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as pretty UTF-8 JSON (non-ASCII kept readable) atomically."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=False, default=str)
    return atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save ``array`` as .npy atomically (never pickled, so it loads with allow_pickle=False)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    return atomic_write(path, write)


def read_json(path: str | Path, what: str) -> Any:
    """Read a JSON file; missing or corrupt raises FileNotFoundError/ValueError naming ``what``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} not found at {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} at {p} is not valid JSON ({exc})") from exc


@contextlib.contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces ``target`` as a whole.

    Used where several files must appear together (a model version, a processed data set): on
    failure the staging directory is deleted and ``target`` is untouched.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(
        tempfile.mkdtemp(prefix=_temp_prefix(final.name), suffix=STAGING_SUFFIX, dir=final.parent)
    )
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    backup = final.parent / f".{final.name}.old"
    shutil.rmtree(backup, ignore_errors=True)
    if final.exists():
        os.replace(final, backup)
    os.replace(stage, final)
    shutil.rmtree(backup, ignore_errors=True)
    _fsync_dir(final.parent)


def replace_files(source_dir: Path, target_dir: Path) -> None:
    """Move every file of ``source_dir`` into ``target_dir`` one atomic rename at a time.

    For output folders that also hold files we do not own (data/processed keeps embeddings written
    by another command): each file is replaced atomically, the others are left alone.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    for item in sorted(source_dir.iterdir()):
        dest = target_dir / item.name
        if item.is_dir():
            replace_files(item, dest)
        else:
            os.replace(item, dest)
    _fsync_dir(target_dir)


def temp_owner(name: str, suffix: str) -> int | None:
    """The writer pid in a temporary name ``.<target>.<pid>.<random><suffix>``; None if absent."""
    parts = name[: len(name) - len(suffix)].rsplit(".", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (in this pid namespace)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:  # it exists, it is someone else's
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def remove_stale_temp_files(
    directory: str | Path,
    prefix: str,
    suffix: str,
    *,
    min_age_s: float = 0.0,
    max_age_s: float = STALE_TEMP_MAX_AGE_S,
) -> list[Path]:
    """Delete the temporary files/directories ``<prefix>*<suffix>`` that no live writer owns.

    One is stale when it is at least ``min_age_s`` old and the pid in its name no longer runs (or
    it has none: written before names carried one), or when it is older than ``max_age_s``
    whatever its pid. A fresh temporary file of a running writer is never touched. Returns what
    was removed; files that vanish meanwhile (another cleaner) are skipped.
    """
    now = time.time()
    removed: list[Path] = []
    for path in sorted(Path(directory).glob(f"{glob.escape(prefix)}*{suffix}")):
        try:
            age = now - path.lstat().st_mtime
        except FileNotFoundError:
            continue
        owner = temp_owner(path.name, suffix)
        orphaned = owner is None or not pid_alive(owner)
        if not (age >= max_age_s or (orphaned and age >= min_age_s)):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block.

    Two processes that write the same registry serialise on this lock.
    """
    lock_path = Path(path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
