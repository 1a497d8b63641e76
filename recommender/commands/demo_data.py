"""``recsys demo-data``: write the seeded demo shop (canonical products + interactions)."""

from __future__ import annotations

import argparse

from recommender import vocabulary as V
from recommender.data.sources.demo import (
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
    DEFAULT_USERS,
    PROFILES,
    generate_demo,
)

HELP = (
    "Generate the seeded demo shop (Vietnamese cosmetics catalogue + users with latent tastes) "
    "as products.parquet + interactions.parquet in --out; read it with `prepare --source demo`."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = " (default: %(default)s)"
    parser.add_argument("--out", default=V.DEFAULT_DEMO_DIR, help="output directory" + default)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="users" + default)
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS, help="products" + default)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed" + default)
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="default: most users buy once; dense: half the users are active with >= 20 "
        "products each; ratings: half active with >= 50 products and graded 1-5 ratings" + default,
    )


def run(args: argparse.Namespace) -> int:
    manifest = generate_demo(
        args.out, users=args.users, products=args.products, seed=args.seed, profile=args.profile
    )
    print(
        f"wrote {args.out}: {manifest['products']} products, {manifest['users']} users, "
        f"{manifest['interactions']} interactions (seed {manifest['seed']}, profile "
        f"{manifest['profile']}, {manifest['seconds']}s)"
    )
    return 0
