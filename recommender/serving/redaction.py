"""Public error text: file paths relative to the configured roots, no other absolute paths.

Reload errors reach anonymous clients (/health, /model_info, every 503 while no model is loaded)
and metrics scrapers; an absolute path tells them the host's directory layout. Logs keep the full
text for operators; what leaves the process goes through :func:`public_message`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from recommender.config.serving import ServingSettings

# An absolute path not already replaced: a "/" not preceded by a word character, ":" (URLs),
# ">" (a "<root>" placeholder) or another path character.
_ABSOLUTE = re.compile(r"(?<![\w:>./~-])/[^\s'\"`,;()\[\]{}<>]+")


def _forms(root: str | Path) -> list[str]:
    """How ``root`` can appear in a message: as configured, absolute, symlinks resolved."""
    path = Path(root)
    forms = {str(path), os.path.abspath(path), str(path.resolve())}
    return sorted((f for f in forms if f not in ("", ".", "/")), key=len, reverse=True)


def public_message(message: str, roots: Mapping[str, str | Path]) -> str:
    """``message`` with each root in ``roots`` written ``<name>`` and any other absolute path cut
    to its last component (``…/file``)."""
    for name, root in roots.items():
        for form in _forms(root):
            message = re.sub(re.escape(form) + r"(?![\w-]|\.\w)", f"<{name}>", message)
    return _ABSOLUTE.sub(lambda match: "…/" + _last_part(match.group(0)), message)


def _last_part(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def serving_roots(settings: ServingSettings) -> dict[str, str]:
    """The roots public messages are relative to, by their config key."""
    return {
        "processed_dir": settings.paths.processed_dir,
        "registry_dir": settings.paths.registry_dir,
    }
