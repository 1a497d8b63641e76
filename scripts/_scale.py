"""The scale shop of issue 12 (1M users × 50K products): build it once, reuse it afterwards.

``--scale`` in the benchmark scripts calls :func:`ensure_shop`: it runs the operator's
``python -m recommender build --source demo`` into ``<root>/{raw,processed,cf}`` when
``<root>/cf/registry.json`` is missing and returns the processed and registry directories. The
build takes tens of minutes and several GB at full size: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALE_ROOT = REPO / "data" / "scale"
SCALE_USERS = 1_000_000
SCALE_PRODUCTS = 50_000


def shop_dir(users: int, products: int, profile: str, root: Path = SCALE_ROOT) -> Path:
    """``<root>/<users>x<products>[-dense]``: one directory per size and profile."""
    suffix = "" if profile == "default" else f"-{profile}"
    return root / f"{users}x{products}{suffix}"


def build_command(directory: Path, users: int, products: int) -> list[str]:
    """``recsys build`` over the shop's raw demo files (generated first by :func:`ensure_shop`)."""
    raw = directory / "raw"
    return [
        sys.executable,
        "-m",
        "recommender",
        "build",
        "--source",
        "demo",
        "--input",
        str(raw),
        "--processed",
        str(directory / "processed"),
        "--registry",
        str(directory / "cf"),
        "--users",
        str(users),
        "--products",
        str(products),
    ]


def ensure_shop(
    users: int = SCALE_USERS,
    products: int = SCALE_PRODUCTS,
    profile: str = "default",
    root: Path = SCALE_ROOT,
    directory: Path | None = None,
) -> tuple[Path, Path]:
    """(processed dir, registry dir) of the shop, built first when it does not exist yet;
    ``directory`` (a shop's own ``raw``/``processed``/``cf`` parent) overrides ``root``."""
    directory = shop_dir(users, products, profile, root) if directory is None else directory
    processed, registry = directory / "processed", directory / "cf"
    if (registry / "registry.json").is_file():
        print(f"reusing the scale shop in {directory}", flush=True)
        return processed, registry
    raw = directory / "raw"
    if not (raw / "interactions.parquet").is_file():
        demo = [sys.executable, "-m", "recommender", "demo-data", "--out", str(raw)]
        demo += ["--users", str(users), "--products", str(products), "--profile", profile]
        print("generating:", " ".join(demo[1:]), flush=True)
        subprocess.run(demo, cwd=REPO, check=True)
    command = build_command(directory, users, products)
    print("building (tens of minutes at full size):", " ".join(command[1:]), flush=True)
    began = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    print(f"built the scale shop in {time.perf_counter() - began:.0f}s", flush=True)
    return processed, registry


def add_shop_arguments(parser: argparse.ArgumentParser) -> None:
    """``--processed`` / ``--registry`` (the demo build by default) and ``--scale``."""
    from _client import DEFAULT_PROCESSED_DIR, DEFAULT_REGISTRY_DIR

    parser.add_argument("--processed", type=Path, default=REPO / DEFAULT_PROCESSED_DIR)
    parser.add_argument("--registry", type=Path, default=REPO / DEFAULT_REGISTRY_DIR)
    parser.add_argument(
        "--scale", action="store_true", help="use (build first if missing) the 1M × 50K shop"
    )
    parser.add_argument(
        "--scale-dir",
        type=Path,
        default=None,
        help="with --scale: the shop directory holding raw/, processed/ and cf/ (default: "
        "data/scale/1000000x50000), e.g. one shared by several checkouts",
    )


def resolve_shop(args: argparse.Namespace) -> None:
    """With ``--scale``, point ``args.processed`` / ``args.registry`` at the scale shop."""
    if args.scale:
        directory = getattr(args, "scale_dir", None)
        args.processed, args.registry = ensure_shop(directory=directory)
