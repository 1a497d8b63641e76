"""Content-embedding quality on the real Hasaki catalogue (1,200 products): how the tfidf defaults
were chosen.

Two checks per encoder variant (each fitted on the catalogue's product texts):

- name -> own description: encode every product's name and every description, rank the 1,200
  descriptions by cosine to the name; report MRR and top-1. Variants of one product family share
  an identical description, so an identical description ranked above counts as a tie, not a miss.
- category neighbours: the share of each product's 10 nearest neighbours (cosine of the full
  product text, and of the description alone) with the same category, derived from the leading
  words of the name ("Sữa Rửa Mặt", "Kem Chống Nắng" ...); products of no known category are
  left out as queries but stay in the pool.

Usage: python scripts/embedding_quality.py [--hasaki ../shared/data/hasaki_vn] [--only LABEL]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender import vocabulary as V  # noqa: E402
from recommender.embeddings import get_encoder  # noqa: E402
from recommender.text import (  # noqa: E402
    build_product_texts,
    normalise_text,
    segmentation,  # noqa: E402
)
from recommender.text.product_text import (  # noqa: E402
    FIELD_WEIGHTS,
    MAX_DESCRIPTION_CHARS,
    field_text,
)

DEFAULT_HASAKI = Path(__file__).resolve().parents[2] / "shared" / "data" / "hasaki_vn"

# (leading words of the lower-cased name, category); the first match wins.
CATEGORY_PREFIXES: list[tuple[tuple[str, ...], str]] = [
    (("sữa rửa mặt", "gel rửa mặt", "bọt rửa mặt", "kem rửa mặt", "srm"), "cleanser"),
    (
        (
            "kem chống nắng",
            "sữa chống nắng",
            "gel chống nắng",
            "xịt chống nắng",
            "tinh chất chống nắng",
        ),
        "sunscreen",
    ),
    (
        ("nước tẩy trang", "dầu tẩy trang", "sáp tẩy trang", "tẩy trang", "bông tẩy trang"),
        "makeup_remover",
    ),
    (("mặt nạ",), "mask"),
    (("tẩy tế bào chết", "tẩy da chết", "gel tẩy", "dung dịch tẩy"), "exfoliator"),
    (("serum", "tinh chất", "dưỡng chất", "essence", "ampoule"), "serum"),
    (("kem dưỡng", "gel dưỡng", "sữa dưỡng", "kem mắt", "kem trị"), "moisturiser"),
    (("nước hoa hồng", "toner", "nước cân bằng", "nước dưỡng"), "toner"),
    (("xịt khoáng", "nước xịt khoáng"), "mist"),
    (("miếng dán", "miếng chấm", "gel chấm"), "spot_patch"),
]

# (label, options over the encoder defaults, description cut-off). The defaults - segmented word
# uni+bigrams, char 2-4 n-grams (<= 20k features per block), 512 SVD dims, descriptions cut at
# 2,000 characters - won here: MRR/top-1 within 0.005 of the best variant that keeps the artifact
# small (full rank, longer descriptions), and a 10-NN category share within 0.04 of the best
# (word unigrams or 128 dims, which lose 0.07-0.16 MRR).
D = MAX_DESCRIPTION_CHARS
BASE = "default: words seg + char 2-4, dim 512"
VARIANTS: list[tuple[str, dict[str, Any], int]] = [
    (BASE, {}, D),
    ("words unsegmented, no char n-grams", {"segment_words": False, "char_ngrams": None}, D),
    ("words segmented, no char n-grams", {"char_ngrams": None}, D),
    ("words unsegmented + char 2-4", {"segment_words": False}, D),
    ("words seg + char 2-5", {"char_ngrams": (2, 5)}, D),
    ("words seg + char 3-5", {"char_ngrams": (3, 5)}, D),
    ("words seg + char 2-4 x0.5", {"char_weight": 0.5}, D),
    ("words seg unigrams + char 2-4", {"word_ngrams": (1, 1)}, D),
    ("default, dim 128", {"dim": 128}, D),
    ("default, dim 256", {"dim": 256}, D),
    ("default, dim 384", {"dim": 384}, D),
    ("default, full rank (1,200)", {"dim": 1200}, D),
    ("default, description <= 500", {}, 500),
    ("default, description <= 1000", {}, 1000),
    ("default, description <= 4000", {}, 4000),
]


@contextlib.contextmanager
def lowercase_segmentation() -> Iterator[None]:
    """Temporarily run pyvi on the lower-cased text instead of the cased one (its default)."""
    original = segmentation._segment_sentence
    segmentation._segment_sentence = functools.lru_cache(maxsize=None)(  # type: ignore[assignment]
        lambda sentence: str(segmentation._tokenizer().tokenize(sentence.lower()))
    )
    try:
        yield
    finally:
        segmentation._segment_sentence = original


_NAME_PREFIX = re.compile(
    r"^(\[[^\]]*\]\s*)*((combo|hộp|bộ)\s+(\d+\s+)?((miếng|chai|hộp|tuýp)\s+)?)?"
)


def _lowercase_run(catalogue: pd.DataFrame) -> Any:
    def run() -> dict[str, float]:
        with lowercase_segmentation():
            return evaluate(catalogue, {})

    return run


def category_of(name: str) -> str | None:
    """Category from the leading words, after "[Mini]"-style tags and "Combo 2"/"Hộp 10 Miếng"."""
    lowered = _NAME_PREFIX.sub("", normalise_text(name))
    for prefixes, category in CATEGORY_PREFIXES:
        if lowered.startswith(prefixes):
            return category
    return None


def load_catalogue(hasaki: Path) -> pd.DataFrame:
    raw = pd.read_csv(hasaki / "San_pham.csv")
    return pd.DataFrame(
        {
            V.PRODUCT_ID: raw["ma_san_pham"].astype(str),
            V.NAME: raw["ten_san_pham"],
            V.DESCRIPTION: raw["mo_ta"],
        }
    )


def name_to_description(
    names: np.ndarray, descriptions: np.ndarray, desc_text: list[str]
) -> tuple[float, float]:
    """(MRR, top-1) of retrieving each product's own description from its name."""
    scores = names @ descriptions.T
    groups = pd.Series(desc_text).factorize()[0]  # identical descriptions share a group
    reciprocal = np.empty(len(names))
    for i in range(len(names)):
        row = scores[i]
        better = row > row[i]
        rank = 1 + int(np.count_nonzero(better & (groups != groups[i])))
        reciprocal[i] = 1.0 / rank
    return float(reciprocal.mean()), float((reciprocal == 1.0).mean())


def neighbour_category_share(
    vectors: np.ndarray, categories: list[str | None], k: int = 10
) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    labels = np.array([c or "" for c in categories])
    shares = []
    for i, category in enumerate(categories):
        if category is None:
            continue
        top = np.argpartition(-sims[i], k)[:k]
        shares.append(float(np.mean(labels[top] == category)))
    return float(np.mean(shares))


def evaluate(
    catalogue: pd.DataFrame,
    options: dict[str, Any],
    weights: Any = FIELD_WEIGHTS,
    max_description_chars: int = MAX_DESCRIPTION_CHARS,
) -> dict[str, float]:
    started = time.perf_counter()
    texts = build_product_texts(catalogue, weights, max_description_chars)
    names = [field_text(V.NAME, n) for n in catalogue[V.NAME]]
    descriptions = [
        field_text(V.DESCRIPTION, d, max_description_chars) for d in catalogue[V.DESCRIPTION]
    ]
    encoder = get_encoder("tfidf", **options).fit(texts)
    full, name_vec, desc_vec = (encoder.encode(t) for t in (texts, names, descriptions))
    seconds = time.perf_counter() - started
    categories = [category_of(n) for n in catalogue[V.NAME]]
    mrr, top1 = name_to_description(name_vec, desc_vec, descriptions)
    return {
        "mrr": mrr,
        "top1": top1,
        "nn10_full": neighbour_category_share(full, categories),
        "nn10_desc": neighbour_category_share(desc_vec, categories),
        "dim": encoder.dim,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hasaki", type=Path, default=DEFAULT_HASAKI)
    parser.add_argument("--only", help="run only the variant with this label")
    args = parser.parse_args()
    catalogue = load_catalogue(args.hasaki)
    categories = [category_of(n) for n in catalogue[V.NAME]]
    counts = pd.Series([c or "(none)" for c in categories]).value_counts()
    print(
        f"{len(catalogue)} products; categories: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )

    print(
        "\n| variant | dim | name->desc MRR | top-1 | 10-NN same category (full text) "
        "| (description only) | fit+encode s |"
    )
    print("|---|---|---|---|---|---|---|")
    runs: list[tuple[str, Any]] = [
        (label, functools.partial(evaluate, catalogue, options, max_description_chars=chars))
        for label, options, chars in VARIANTS
    ]
    name_once = [(c, 1) for c, _ in FIELD_WEIGHTS]
    runs.append(
        ("default, fields unweighted", functools.partial(evaluate, catalogue, {}, name_once))
    )
    runs.append(("default, pyvi on lower-cased text", _lowercase_run(catalogue)))
    for label, run in runs:
        if args.only and label != args.only:
            continue
        r = run()
        print(
            f"| {label} | {r['dim']:.0f} | {r['mrr']:.3f} | {r['top1']:.3f} "
            f"| {r['nn10_full']:.3f} | {r['nn10_desc']:.3f} | {r['seconds']:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
