"""pyproject.toml's lower bounds are exactly the versions ``make test-floor`` installs and tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
REPO = Path(__file__).resolve().parents[1]


def _floors() -> dict[str, Version]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    requirements = [*project["dependencies"], *(line for extra in extras for line in extra)]
    floors: dict[str, Version] = {}
    for line in requirements:
        requirement = Requirement(line)
        bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
        assert len(bounds) == 1, f"{line}: give exactly one lower bound (>=) or pin (==)"
        name, floor = canonicalize_name(requirement.name), Version(bounds[0])
        assert floors.get(name, floor) == floor, f"{name}: two different floors"
        floors[name] = floor
    return floors


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (REPO / "constraints" / "floor.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = Version(spec.version)
    return pins


def test_constraints_pin_every_direct_dependency_at_its_floor() -> None:
    assert _pins() == _floors()
