"""The ``demo`` source: a seeded generator of a realistic Vietnamese cosmetics shop (the default).

:func:`generate_demo` writes canonical ``products.parquet`` + ``interactions.parquet`` (+
``demo_manifest.json``); :func:`load` reads them back like the ``canonical`` source.

How interactions are drawn (all numpy, no per-user Python loop):

- Each user has a latent persona: skin type ``s``, price band ``b`` (budget/mid/premium) and a
  favourite brand ``f`` (near their band). Persona ``k``'s log-affinity for product ``i`` is
  ``0.6·log_pop_i + 1.6·skin_i[s] − 0.9·|tier_i − b| + 2·[brand_i = f] + ε_{(s,b),i}`` where
  ``ε ~ N(0, 2.2)`` is taste shared by a (skin, band) cluster that content cannot explain (only
  collaborative filtering can learn it).
- Basket size: 91% of users buy once, the rest ``1 + Geometric(0.4)`` (capped at 40).
- Categories follow a skincare-routine Markov chain (cleanser → toner/makeup remover/cream,
  serum → cream/sunscreen …), so consecutive items are complementary; the item within a category is
  drawn from the persona's affinities — a user's later items correlate with the earlier ones.
- Timestamps span two years; 40% of follow-up purchases are in the same order (minutes apart).
- Ratings are 5★ ~95% of the time; 4–1★ become likelier when the product's skin types miss the
  user's skin type or its latent quality is low (content and quality signals both carry weight).

Stable example ids (:data:`RESERVED_USERS`, also in ``demo_manifest.json``): after drawing, a few
generated users are *relabelled* (same interactions, so the distribution is unchanged) so that the
README's and the release checklist's examples hit every routing path on any demo shop:
``"1"`` and ``"2"`` are trainable (CF row), ``"3"`` rated every product 2★ or less (known, no taste
evidence: popularity minus what they bought), ``"999999"`` bought one product, 5★ (known, no CF
row: the cold hybrid) and :data:`NEW_VISITOR` never exists (popularity).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.sources import canonical
from recommender.data.sources.base import CANONICAL_PRODUCT_COLUMNS, SourceTables
from recommender.data.sources.demo_catalogue import (
    BRANDS,
    CATEGORIES,
    USER_SKIN_SHARE,
    USER_SKIN_TYPES,
    DemoCatalogue,
    make_catalogue,
)
from recommender.data.writer import staged_files
from recommender.errors import InvalidDataError
from recommender.storage import atomic_write_json

NAME = "demo"
DEFAULT_USERS = 50_000
DEFAULT_PRODUCTS = 2_000
DEFAULT_SEED = 42
PRODUCTS_FILE = "products.parquet"
INTERACTIONS_FILE = "interactions.parquet"
MANIFEST_FILE = "demo_manifest.json"

SINGLE_SHARE = 0.91
REPEAT_P = 0.4
MAX_PER_USER = 40
# the dense variant (``profile="dense"``): half the users are active, each with at least
# DENSE_MIN_PER_USER distinct products (drawn with a margin, since a repeat is dropped; one whose
# distinct products still fall short keeps only its first, see _dense_floor)
# ``profile="ratings"``: the same with RATINGS_MIN_PER_USER products each and graded 1-5 ratings
# (a ratings-site shop, where a tuning sized for review data fails; scripts/benchmark_tuning.py)
PROFILES = ("default", "dense", "ratings")
DENSE_SINGLE_SHARE = 0.5
DENSE_MIN_PER_USER = 20
RATINGS_MIN_PER_USER = 50
DENSE_DRAW_MARGIN = 12
DENSE_MAX_PER_USER = 80
START = np.datetime64("2023-01-01T00:00:00", "s")
SPAN_DAYS = 730.0
SAME_ORDER_SHARE = 0.4
MEAN_GAP_DAYS = 45.0
BAND_SHARE = np.array([0.5, 0.35, 0.15])
# persona log-affinity = POPULARITY_WEIGHT·log_pop + SKIN_WEIGHT·skin match
#   − TIER_WEIGHT·|tier − band| + BRAND_WEIGHT·[favourite brand]
#   + N(0, TASTE_NOISE) per (skin, band) cluster
# Tuned so that on the default shop ALS beats popularity ~2x in HR@10 while the top 10% of products
# still take ~50% of interactions, and a test item's brand is in the user's history ~1.8x as often
# as a popularity-drawn item's.
POPULARITY_WEIGHT = 0.6
SKIN_WEIGHT = 1.6
TIER_WEIGHT = 0.9
BRAND_WEIGHT = 2.0
TASTE_NOISE = 2.2
LOW_STAR_SPLIT = np.array([0.45, 0.2, 0.12, 0.23])  # 4★, 3★, 2★, 1★ among non-5★

START_SHARE = {
    "Sữa rửa mặt": 0.22,
    "Kem chống nắng": 0.17,
    "Serum": 0.12,
    "Nước hoa hồng": 0.09,
    "Kem dưỡng": 0.13,
    "Mặt nạ": 0.10,
    "Nước tẩy trang": 0.12,
    "Tẩy da chết": 0.03,
    "Xịt khoáng": 0.02,
}
ROUTINE: dict[str, dict[str, float]] = {
    "Sữa rửa mặt": {
        "Nước hoa hồng": 3,
        "Nước tẩy trang": 3,
        "Kem dưỡng": 2,
        "Serum": 2,
        "Kem chống nắng": 1.5,
        "Tẩy da chết": 1,
        "Mặt nạ": 1,
    },
    "Nước tẩy trang": {"Sữa rửa mặt": 4, "Nước hoa hồng": 1.5, "Kem chống nắng": 1},
    "Kem chống nắng": {
        "Serum": 2,
        "Kem dưỡng": 2,
        "Nước tẩy trang": 2,
        "Sữa rửa mặt": 1.5,
        "Xịt khoáng": 1,
    },
    "Serum": {"Kem dưỡng": 3, "Kem chống nắng": 2, "Nước hoa hồng": 1.5, "Serum": 1, "Mặt nạ": 1},
    "Nước hoa hồng": {"Serum": 3, "Kem dưỡng": 2, "Sữa rửa mặt": 1.5},
    "Kem dưỡng": {"Serum": 2.5, "Kem chống nắng": 2, "Mặt nạ": 1.5, "Sữa rửa mặt": 1},
    "Mặt nạ": {"Mặt nạ": 3, "Serum": 1.5, "Kem dưỡng": 1, "Tẩy da chết": 1},
    "Tẩy da chết": {"Sữa rửa mặt": 2, "Nước hoa hồng": 2, "Serum": 1.5, "Mặt nạ": 1},
    "Xịt khoáng": {"Kem chống nắng": 2, "Kem dưỡng": 1.5, "Nước hoa hồng": 1},
}

# stable example ids: id -> (what the user is, which generated user gets it: the first, in id order,
# with at least ``min_items`` products and ratings in [min_rating, max_rating])
RESERVED_USERS: dict[str, tuple[str, int, int | None, float, float]] = {
    "1": ("trainable: >= 5 products, all rated >= 4 stars; CF row after the build", 5, None, 4, 5),
    "2": ("trainable: >= 3 products, all rated >= 4 stars; CF row after the build", 3, None, 4, 5),
    "3": ("known, every product rated <= 2 stars: no taste evidence, popularity", 1, None, 1, 2),
    "999999": ("known cold user: exactly one product, rated 5 stars; no CF row", 1, 1, 5, 5),
}
NEW_VISITOR = "new-visitor"  # never in the demo data: the unknown-user (popularity) example

log = logging.getLogger(__name__)


def _sample_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: row ``r`` of ``cdf`` (non-decreasing, last = 1) sampled with ``u[r]``."""
    return np.minimum((u[:, None] > cdf).sum(axis=1), cdf.shape[1] - 1)


def _personas(n_users: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return (unique persona table (K, 3) of skin/band/brand, persona index per user)."""
    skin = rng.choice(len(USER_SKIN_TYPES), size=n_users, p=USER_SKIN_SHARE)
    band = rng.choice(3, size=n_users, p=BAND_SHARE)
    tiers = np.array([t for t, _, _ in BRANDS.values()])
    appeal = np.array([a for _, a, _ in BRANDS.values()])
    brand = np.empty(n_users, dtype=np.int64)
    for b in range(3):
        weights = appeal * np.exp(-1.5 * np.abs(tiers - b))
        members = np.flatnonzero(band == b)
        brand[members] = rng.choice(len(tiers), size=len(members), p=weights / weights.sum())
    table, persona = np.unique(np.stack([skin, band, brand], axis=1), axis=0, return_inverse=True)
    return table, persona.ravel()


def _affinity(
    catalogue: DemoCatalogue, personas: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(K, P) unnormalised preference of each persona for each product."""
    skin, band, brand = personas[:, 0], personas[:, 1], personas[:, 2]
    n_products = len(catalogue.tier)
    cluster_noise = rng.normal(0.0, TASTE_NOISE, size=(len(USER_SKIN_TYPES) * 3, n_products))
    logits = (
        POPULARITY_WEIGHT * catalogue.log_popularity[None, :]
        + SKIN_WEIGHT * catalogue.skin[:, skin].T
        - TIER_WEIGHT * np.abs(catalogue.tier[None, :] - band[:, None])
        + BRAND_WEIGHT * (catalogue.brand[None, :] == brand[:, None])
        + cluster_noise[skin * 3 + band]
    )
    return np.exp(logits - logits.max(axis=1, keepdims=True))


def _categories(n_per_user: np.ndarray, starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Category index of every interaction, user by user along the routine Markov chain."""
    names = list(CATEGORIES)
    start = np.array([START_SHARE[c] for c in names])
    trans = np.full((len(names), len(names)), 0.2)
    for src, targets in ROUTINE.items():
        for dst, w in targets.items():
            trans[names.index(src), names.index(dst)] = w
    start_cdf = np.cumsum(start / start.sum())[None, :]
    trans_cdf = np.cumsum(trans / trans.sum(axis=1, keepdims=True), axis=1)
    out = np.empty(int(n_per_user.sum()), dtype=np.int64)
    out[starts] = np.minimum(
        (rng.random(len(starts))[:, None] > start_cdf).sum(axis=1), len(names) - 1
    )
    for k in range(1, int(n_per_user.max())):
        idx = starts[n_per_user > k] + k
        out[idx] = _sample_rows(trans_cdf[out[idx - 1]], rng.random(len(idx)))
    return out


def _items(
    catalogue: DemoCatalogue,
    affinity: np.ndarray,
    persona: np.ndarray,
    category: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Product row of every interaction: drawn from its persona's affinities within its category."""
    items = np.empty(len(category), dtype=np.int64)
    for c in range(len(CATEGORIES)):
        rows = np.flatnonzero(category == c)
        members = np.flatnonzero(catalogue.category == c)
        if len(rows) == 0:
            continue
        if len(members) == 0:  # tiny catalogues may lack a category: fall back to any product
            members = np.arange(len(catalogue.category))
        weights = affinity[:, members]
        cdf = np.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]
        flat = (cdf + np.arange(len(cdf))[:, None]).ravel()  # row r occupies [r, r + 1]
        k = persona[rows]
        pos = np.searchsorted(flat, k + rng.random(len(rows)) * (1 - 1e-12), side="right")
        items[rows] = members[np.minimum(pos - k * len(members), len(members) - 1)]
    return items


def _timestamps(n_per_user: np.ndarray, starts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = int(n_per_user.sum())
    gaps = np.where(
        rng.random(n) < SAME_ORDER_SHARE,
        rng.uniform(30, 600, n),
        rng.exponential(MEAN_GAP_DAYS * 86400.0, n),
    )
    gaps[starts] = 0.0
    total = np.cumsum(gaps)
    offsets = total - np.repeat(total[starts], n_per_user)
    span = offsets[starts + n_per_user - 1]  # per user
    window = SPAN_DAYS * 86400.0
    scale = np.where(span > window, window / np.maximum(span, 1.0), 1.0)
    offsets = offsets * np.repeat(scale, n_per_user)
    first = (window - span * scale) * rng.random(len(starts)) ** 0.8  # mild growth of the shop
    seconds = np.repeat(first, n_per_user) + offsets
    return START + seconds.astype("int64").astype("timedelta64[s]")


def reserved_assignment(interactions: pd.DataFrame) -> dict[str, str]:
    """Generated user id -> reserved id (:data:`RESERVED_USERS`); a role no user fits is skipped."""
    per_user = interactions.groupby(V.USER_ID, sort=True)[V.RATING].agg(["size", "min", "max"])
    taken: dict[str, str] = {}
    for reserved, (_, min_items, max_items, low, high) in RESERVED_USERS.items():
        fits = (
            (per_user["size"] >= min_items)
            & (per_user["size"] <= (max_items or MAX_PER_USER))
            & (per_user["min"] >= low)
            & (per_user["max"] <= high)
            & ~per_user.index.isin(list(taken))
        )
        if fits.any():
            taken[str(per_user.index[fits.to_numpy()][0])] = reserved
        else:
            log.warning("demo shop: no generated user fits reserved id %r; skipped", reserved)
    return taken


def _relabel_reserved(interactions: pd.DataFrame) -> pd.Series:
    ids = interactions[V.USER_ID]
    mapping = reserved_assignment(interactions)
    return ids.where(~ids.isin(list(mapping)), ids.map(mapping))


def _counts(users: int, profile: str, rng: np.random.Generator) -> np.ndarray:
    """Interactions drawn per user: mostly one-time visitors (default) or dense active users."""
    n_per_user = np.ones(users, dtype=np.int64)
    if profile in ("dense", "ratings"):
        floor = _floor(profile)
        multi = rng.random(users) >= DENSE_SINGLE_SHARE
        extra = rng.geometric(REPEAT_P, int(multi.sum())) - 1
        n_per_user[multi] = np.minimum(
            floor + DENSE_DRAW_MARGIN * floor // DENSE_MIN_PER_USER + extra,
            DENSE_MAX_PER_USER * floor // DENSE_MIN_PER_USER,
        )
        return n_per_user
    multi = rng.random(users) >= SINGLE_SHARE
    n_per_user[multi] = np.minimum(1 + rng.geometric(REPEAT_P, int(multi.sum())), MAX_PER_USER)
    return n_per_user


def _floor(profile: str) -> int:
    return RATINGS_MIN_PER_USER if profile == "ratings" else DENSE_MIN_PER_USER


def _dense_floor(interactions: pd.DataFrame, floor: int = DENSE_MIN_PER_USER) -> pd.DataFrame:
    """Keep an active user's rows only if they name at least ``floor`` distinct products, else
    only the first: every active user of the dense shop is dense."""
    users = interactions[V.USER_ID]
    size = users.map(users.value_counts())
    first = interactions.groupby(V.USER_ID, sort=False).cumcount() == 0
    keep = first | (size >= floor)
    return interactions[keep.to_numpy()].reset_index(drop=True)


def generate(
    users: int = DEFAULT_USERS,
    products: int = DEFAULT_PRODUCTS,
    seed: int = DEFAULT_SEED,
    profile: str = "default",
) -> SourceTables:
    """Generate the demo shop in memory (canonical tables); deterministic for ``seed``.

    ``profile="dense"``: half the users are active with at least :data:`DENSE_MIN_PER_USER`
    distinct products each (the dense variant of the 1M × 50K scale shop). Vectorised throughout:
    1M users × 50K products take minutes, not hours.
    """
    if users < 1 or products < 1:
        raise InvalidDataError(
            f"demo sizes must be positive (got users={users}, products={products})."
        )
    if profile not in PROFILES:
        raise InvalidDataError(f"demo profile must be one of {PROFILES} (got {profile!r}).")
    rng = np.random.default_rng(seed)
    catalogue = make_catalogue(products, rng)
    table, persona = _personas(users, rng)
    n_per_user = _counts(users, profile, rng)
    starts = np.concatenate([[0], np.cumsum(n_per_user)[:-1]])
    user_of = np.repeat(np.arange(users), n_per_user)
    category = _categories(n_per_user, starts, rng)
    items = _items(catalogue, _affinity(catalogue, table, rng), persona[user_of], category, rng)
    stamps = _timestamps(n_per_user, starts, rng)

    user_skin = table[persona[user_of], 0]
    mismatch = 1.0 - catalogue.skin[items, user_skin]
    p_low = 0.01 + 0.06 * mismatch + 0.12 * (1.0 - catalogue.quality[items])
    low = rng.random(len(items)) < p_low
    ratings = np.full(len(items), 5.0)
    ratings[low] = 4.0 - rng.choice(4, size=int(low.sum()), p=LOW_STAR_SPLIT)
    if profile == "ratings":  # graded: stars follow the skin match and quality, with noise
        fit = 3.4 + 1.6 * catalogue.quality[items] - 1.8 * mismatch
        ratings = np.clip(np.rint(fit + rng.normal(0.0, 0.9, len(items))), 1.0, 5.0)

    interactions = pd.DataFrame(
        {
            V.USER_ID: np.char.mod("u%06d", np.arange(1, users + 1)).astype(object)[user_of],
            V.PRODUCT_ID: catalogue.products[V.PRODUCT_ID].to_numpy()[items],
            V.RATING: ratings,
            V.TIMESTAMP: stamps.astype("datetime64[ns]"),
            V.WEIGHT: 1.0,
            V.SOURCE: NAME,
        }
    ).drop_duplicates([V.USER_ID, V.PRODUCT_ID], keep="first", ignore_index=True)
    if profile in ("dense", "ratings"):
        interactions = _dense_floor(interactions, _floor(profile))
    interactions[V.USER_ID] = _relabel_reserved(interactions)

    counts = np.bincount(items, minlength=products)
    frame = catalogue.products.copy()
    frame[V.NUM_RATINGS] = counts * rng.integers(3, 12, products) + rng.poisson(3, products)
    frame[V.NUM_SOLD] = np.round(frame[V.NUM_RATINGS] * rng.uniform(2.5, 6.0, products)).astype(
        "int64"
    )
    frame[V.AVG_RATING] = np.round(
        np.clip(4.0 + catalogue.quality + rng.normal(0, 0.08, products), 3.5, 5.0), 1
    )
    return SourceTables(NAME, frame[list(CANONICAL_PRODUCT_COLUMNS)], interactions)


def generate_demo(
    out_dir: str | Path,
    users: int = DEFAULT_USERS,
    products: int = DEFAULT_PRODUCTS,
    seed: int = DEFAULT_SEED,
    profile: str = "default",
) -> dict[str, object]:
    """Generate the demo shop and write it in canonical format into ``out_dir`` (atomically).

    Writes ``products.parquet``, ``interactions.parquet`` and ``demo_manifest.json``; other files in
    ``out_dir`` are left alone. Returns the manifest (sizes, seed, timing).
    """
    began = time.perf_counter()
    log.info("generating demo shop: %d users, %d products, seed %d", users, products, seed)
    tables = generate(users, products, seed, profile)
    manifest: dict[str, object] = {
        "generator": "recommender.data.sources.demo",
        "seed": seed,
        "profile": profile,
        "users": users,
        "products": products,
        "interactions": len(tables.interactions),
        "reserved_user_ids": {
            reserved: RESERVED_USERS[reserved][0]
            for reserved in RESERVED_USERS
            if reserved in set(tables.interactions[V.USER_ID])
        },
        "new_visitor_id": NEW_VISITOR,
        "seconds": round(time.perf_counter() - began, 2),
    }
    log.info(
        "generated %d interactions in %.1fs; writing %s",
        len(tables.interactions),
        manifest["seconds"],
        out_dir,
    )
    with staged_files(out_dir) as stage:
        tables.products.to_parquet(stage / PRODUCTS_FILE, index=False)
        tables.interactions.to_parquet(stage / INTERACTIONS_FILE, index=False)
        atomic_write_json(stage / MANIFEST_FILE, manifest)
    return manifest


def load(input_dir: str | Path) -> SourceTables:
    """Read demo files written by :func:`generate_demo` (canonical format, source ``demo``)."""
    directory = Path(input_dir)
    if not any(
        (directory / f"{stem}.{ext}").is_file()
        for stem in ("products",)
        for ext in ("parquet", "csv")
    ):
        raise InvalidDataError(
            f"no demo data in {directory}: expected {PRODUCTS_FILE} and {INTERACTIONS_FILE}. "
            f"Create them with `python -m recommender demo-data --out {directory}`."
        )
    return canonical.load(directory, source=NAME)
