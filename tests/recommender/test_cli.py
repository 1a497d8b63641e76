"""The CLI turns operating-system errors (disk full, file too large) into one line + exit 1."""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from recommender import cli
from recommender import vocabulary as V
from recommender.registry import Registry
from tests.recommender.test_registry import _register

REPO = Path(__file__).resolve().parents[2]


def _two_models(root: Path) -> tuple[str, str]:
    """A registry with ``first`` promoted, then ``second``: promote and rollback both write."""
    first, second = _register(root, 0.20, seed=1), _register(root, 0.21, seed=2)
    registry = Registry(root)
    registry.promote(first.model_id)
    registry.promote(second.model_id)
    return first.model_id, second.model_id


def _enospc(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name


@pytest.mark.parametrize("action", ["promote", "rollback"])
@pytest.mark.parametrize(
    "failing", ["pathlib.Path.write_bytes", "recommender.storage.os.fsync", "os.replace"]
)
def test_disk_full_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, action: str, failing: str
) -> None:
    first, _second = _two_models(tmp_path)
    before = (tmp_path / V.REGISTRY_FILE).read_bytes()
    monkeypatch.setattr(failing, _enospc)
    argv = ["registry", action, *([first, "--force"] if action == "promote" else [])]
    code = cli.main([*argv, "--registry", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"error: {tmp_path / V.REGISTRY_FILE}: No space left on device [ENOSPC] (the file keeps "
        "its previous content); free disk space and re-run the command.\n"
    )
    assert (tmp_path / V.REGISTRY_FILE).read_bytes() == before
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_describe_os_error_without_errno_or_file() -> None:
    assert cli.describe_os_error(OSError("disk full")) == (
        "disk full; fix the cause and re-run the command."
    )
    assert cli.describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/x")) == (
        "/x: Permission denied [EACCES]; check the path's ownership and permissions, then "
        "re-run the command."
    )


def _small_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (256, 256))


def test_real_cli_write_failure_is_one_line(tmp_path: Path) -> None:
    """The installed CLI in a subprocess whose writes really fail: files may not exceed 256 bytes
    (RLIMIT_FSIZE; Python ignores SIGXFSZ, so write() fails with EFBIG as on a full disk)."""
    first, second = _two_models(tmp_path)
    before = (tmp_path / V.REGISTRY_FILE).read_bytes()
    assert len(before) > 256
    for argv in (["promote", first, "--force"], ["rollback"]):
        proc = subprocess.run(
            [sys.executable, "-m", "recommender", "registry", *argv, "--registry", str(tmp_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=_small_file_limit,
        )
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (
            f"error: {tmp_path / V.REGISTRY_FILE}: File too large [EFBIG] (the file keeps its "
            "previous content); the file exceeds a size limit (ulimit -f): raise it and re-run "
            "the command.\n"
        )
        assert proc.stdout == ""
        assert (tmp_path / V.REGISTRY_FILE).read_bytes() == before
        assert not list(tmp_path.glob(".*.tmp"))
    assert Registry(tmp_path).current().model_id == second
