"""A shared "latest acknowledged sequence" counter: 8 bytes in a file every worker maps.

Why: every request checks whether the store holds records its worker has not applied yet
(read-your-writes across workers). A SQLite query for that costs tens of microseconds under
load; reading an ``mmap`` costs well under one. Each writer raises the counter to the newest
committed sequence *after* its commit and *before* it acknowledges, under an exclusive
``flock`` so that two processes never lower it; readers read it without a lock. So a value read
after an ack is at least that ack's sequence number, which is all the check needs.

The file is a hint, never the data: when it cannot be opened (read-only folder, no ``mmap``)
:meth:`SeqHint.read` returns ``None`` and callers ask the store itself. Deleting it is safe (the
next write recreates it; until then the background tail still catches up).
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
from pathlib import Path

log = logging.getLogger(__name__)
_FORMAT = struct.Struct("<q")


class SeqHint:
    """The counter file at ``path`` (created on first use), safe across ``fork``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._pid = -1
        self._failed = False
        self._lock = threading.Lock()

    def _mapped(self) -> mmap.mmap | None:
        if self._pid == os.getpid() and self._map is not None:
            return self._map
        if self._failed and self._pid == os.getpid():
            return None
        with self._lock:
            if self._pid != os.getpid():  # a forked child gets its own descriptor (flock)
                self._fd, self._map, self._failed = None, None, False
                self._pid = os.getpid()
            if self._map is None and not self._failed:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        if os.fstat(fd).st_size < _FORMAT.size:
                            fcntl.flock(fd, fcntl.LOCK_EX)
                            try:
                                if os.fstat(fd).st_size < _FORMAT.size:
                                    os.ftruncate(fd, _FORMAT.size)
                            finally:
                                fcntl.flock(fd, fcntl.LOCK_UN)
                        self._map = mmap.mmap(fd, _FORMAT.size)
                        self._fd = fd
                    except BaseException:
                        os.close(fd)
                        raise
                except OSError as exc:
                    log.warning(
                        "sequence hint %s unavailable (%s): checking the store", self.path, exc
                    )
                    self._failed = True
            return self._map

    def read(self) -> int | None:
        """The counter, or None when the file cannot be used."""
        mapped = self._mapped()
        return None if mapped is None else int(_FORMAT.unpack_from(mapped, 0)[0])

    def raise_to(self, seq: int) -> None:
        """Set the counter to ``seq`` unless it is already higher (never raises)."""
        mapped = self._mapped()
        if mapped is None or self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if _FORMAT.unpack_from(mapped, 0)[0] < seq:
                    _FORMAT.pack_into(mapped, 0, seq)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except (OSError, ValueError) as exc:
            log.warning("sequence hint %s not updated (%s)", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._map is not None and self._pid == os.getpid():
                self._map.close()
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._map, self._fd = None, None
