"""``python -m recommender <command>`` (also installed as ``recsys``).

Each command lives in ``recommender/commands/<name>.py`` and exports ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Errors of the project's hierarchy are printed
as one line (no traceback) and end with exit code 2; operating-system errors (disk full, no
permission, read-only filesystem) as one line naming the file and the cause, with exit code 1.
``--verbose`` adds the traceback as a DEBUG log line.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence

from recommender.errors import RecsysError
from recommender.storage import ArtifactWriteError

logger = logging.getLogger("recommender.cli")

# command name -> module under recommender.commands
COMMANDS: dict[str, str] = {
    "demo-data": "demo_data",
    "prepare": "prepare",
    "embed": "embed",
    "train": "train",
    "evaluate": "evaluate",
    "registry": "registry",
    "build": "build",
    "events": "events",
    "export": "export",
}

# one-line summaries for `recsys --help`, so listing commands imports none of them (torch is slow)
SUMMARIES: dict[str, str] = {
    "demo-data": "generate the seeded demo shop (raw canonical files)",
    "prepare": "validate, dedup, split and write data/processed from a raw source",
    "embed": "encode product text into content_based_embeddings/product_embeddings.pt",
    "train": "tune ALS/BPR on validation, evaluate on test, register candidates",
    "evaluate": "print and save the evaluation table of a registered model",
    "registry": "list, show, promote or roll back model versions",
    "build": "prepare -> embed -> train -> evaluate -> register -> promote in one go",
    "events": "event store: stats, and compaction up to the serving model's data cut-off",
    "export": "top-K of every known user (or a list) into a parquet file, for campaigns",
}


def _parser(selected: str | None) -> argparse.ArgumentParser:
    """The CLI parser; only the ``selected`` command's module is imported."""
    parser = argparse.ArgumentParser(
        prog="recsys",
        description=(
            "Vietnamese cosmetics recommender: data, embeddings, training, evaluation, registry."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if name != selected:
            sub.add_parser(name, help=SUMMARIES.get(name, ""))
            continue
        module = importlib.import_module(f"recommender.commands.{module_name}")
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


# what to do about the usual operating-system errors; anything else: fix the cause and re-run
OS_ERROR_HINTS: dict[int, str] = {
    errno.ENOSPC: "free disk space and re-run the command",
    errno.EDQUOT: "free space within your disk quota and re-run the command",
    errno.EACCES: "check the path's ownership and permissions, then re-run the command",
    errno.EPERM: "check the path's ownership and permissions, then re-run the command",
    errno.EROFS: "the filesystem is mounted read-only: write to a writable one",
    errno.EFBIG: "the file exceeds a size limit (ulimit -f): raise it and re-run the command",
}


def describe_os_error(exc: OSError) -> str:
    """One line: the file, the OS's words and errno name, whether the file is intact, what to do."""
    where = ""
    if exc.filename is not None:
        where = str(exc.filename)
        where += f" -> {exc.filename2}: " if exc.filename2 is not None else ": "
    cause = exc.strerror or str(exc) or type(exc).__name__
    number = exc.errno if isinstance(exc.errno, int) else -1
    code = errno.errorcode.get(number)
    kept = " (the file keeps its previous content)" if isinstance(exc, ArtifactWriteError) else ""
    hint = OS_ERROR_HINTS.get(number, "fix the cause and re-run the command")
    return f"{where}{cause}{f' [{code}]' if code else ''}{kept}; {hint}."


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; project errors become one line + exit 2, operating-system
    errors one line + exit 1."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in arguments if not a.startswith("-")), None)
    args = _parser(selected).parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except RecsysError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        logger.debug("operating-system error", exc_info=True)
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
