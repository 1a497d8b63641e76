"""``python -m recommender <command>`` (also installed as ``recsys``).

Each command lives in ``recommender/commands/<name>.py`` and exports ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Errors of the project's hierarchy are printed
as one line (no traceback) and end with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from recommender.errors import RecsysError

# command name -> module under recommender.commands
COMMANDS: dict[str, str] = {
    "demo-data": "demo_data",
    "prepare": "prepare",
    "embed": "embed",
    "train": "train",
    "evaluate": "evaluate",
    "registry": "registry",
    "build": "build",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, and turn project errors into a one-line message + exit 2."""
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
