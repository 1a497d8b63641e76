"""The ``hasaki`` source: ``San_pham.csv`` + ``Danh_gia.csv`` (``Khach_hang.csv`` optional, unused).

Hasaki shows one review on every variant of a product family (sizes, colours, "Combo 2 …"), so the
raw rows repeat one event across up to 19 product ids; used as-is every evaluation leaks. We group
variants into families with the README's *better family rule*:

1. an event is one (customer, date, time, text) review;
2. link products ``p, q`` when ``shared_events(p, q) / min(events(p), events(q)) >= 0.5``
   (true variants overlap >= 0.83; spurious pairs — one customer, two orders in one minute — < 0.1);
3. families are the connected components (union-find).

Products become families: one representative per family (the member with most review events; ties:
catalogue order), ``product_id`` = the representative's id. Interactions become one row per
(customer, family), keeping the earliest event. Brand/category come from the Vietnamese name.
Dates are ``dd/mm/YYYY`` + ``HH:MM``; invalid dates (``30/11/-0001``) and 0-star rows are dropped
and counted as bad rows; the variant copies (13,675 on the shared reviews) are counted apart, as
merged rows (``data_stats.json`` ``merged_rows``), since they are intended, not errors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.sources import taxonomy
from recommender.data.sources.base import CANONICAL_PRODUCT_COLUMNS, SourceTables
from recommender.data.validation import (
    UNKNOWN_PRODUCT,
    clean_interactions,
    clean_products,
    find_file,
    id_strings,
    read_table,
)

NAME = "hasaki"
PRODUCTS_FILE = "San_pham.csv"
REVIEWS_FILE = "Danh_gia.csv"
PRODUCT_COLUMNS = ("ma_san_pham", "ten_san_pham", "gia_ban")
REVIEW_COLUMNS = ("ma_khach_hang", "ngay_binh_luan", "gio_binh_luan", "so_sao", "ma_san_pham")
DATE_FORMAT = "%d/%m/%Y %H:%M"
LINK_OVERLAP = 0.5
VARIANT_COPY = "variant_copy"  # merge reason: a copy of a review on another variant of its family


def _find(parent: dict[str, str], x: str) -> str:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def product_families(events: pd.DataFrame) -> dict[str, str]:
    """Map every reviewed product id to its family's representative id.

    ``events``: one row per (event_id, product_id) with columns ``event``, ``product_id``, ``order``
    (catalogue position, for ties). The representative is the member with most events.
    """
    pairs = events[["event", V.PRODUCT_ID]].drop_duplicates()
    n_events = pairs.groupby(V.PRODUCT_ID).size()
    joined = pairs.merge(pairs, on="event", suffixes=("_p", "_q"))
    joined = joined[joined[f"{V.PRODUCT_ID}_p"] < joined[f"{V.PRODUCT_ID}_q"]]
    shared = joined.groupby([f"{V.PRODUCT_ID}_p", f"{V.PRODUCT_ID}_q"]).size().rename("shared")
    shared = shared.reset_index()
    smaller = np.minimum(
        n_events.loc[shared[f"{V.PRODUCT_ID}_p"]].to_numpy(),
        n_events.loc[shared[f"{V.PRODUCT_ID}_q"]].to_numpy(),
    )
    links = shared[shared["shared"].to_numpy() / smaller >= LINK_OVERLAP]
    parent = {p: p for p in n_events.index}
    for p, q in zip(links[f"{V.PRODUCT_ID}_p"], links[f"{V.PRODUCT_ID}_q"], strict=True):
        rp, rq = _find(parent, p), _find(parent, q)
        if rp != rq:
            parent[max(rp, rq)] = min(rp, rq)
    roots = pd.DataFrame({V.PRODUCT_ID: n_events.index, "n_events": n_events.to_numpy()})
    roots["root"] = [_find(parent, p) for p in roots[V.PRODUCT_ID]]
    order = events.drop_duplicates(V.PRODUCT_ID).set_index(V.PRODUCT_ID)["order"]
    roots["order"] = order.loc[roots[V.PRODUCT_ID]].to_numpy()
    roots = roots.sort_values(["root", "n_events", "order"], ascending=[True, False, True])
    representative = roots.drop_duplicates("root").set_index("root")[V.PRODUCT_ID]
    return dict(zip(roots[V.PRODUCT_ID], representative.loc[roots["root"]].to_numpy(), strict=True))


def _catalogue(path: Path) -> tuple[pd.DataFrame, Counter[str]]:
    raw = read_table(path, PRODUCT_COLUMNS)
    names = raw["ten_san_pham"].astype("string").fillna("").str.strip().astype("str")
    description = (
        raw["mo_ta"].astype("string").fillna("") if "mo_ta" in raw else pd.Series([""] * len(raw))
    )
    description = description.astype("str")
    frame = pd.DataFrame(
        {
            V.PRODUCT_ID: id_strings(raw["ma_san_pham"]),
            V.NAME: names,
            V.BRAND: names.map(taxonomy.parse_brand),
            V.CATEGORY: names.map(taxonomy.parse_category),
            V.PRICE: raw["gia_ban"],
            V.AVG_RATING: raw["diem_trung_binh"] if "diem_trung_binh" in raw else np.nan,
            V.NUM_RATINGS: 0,
            V.NUM_SOLD: 0,  # Hasaki publishes no sales counts
            V.SKIN_TYPES: [
                taxonomy.parse_skin_types(f"{n} {d}")
                for n, d in zip(names, description, strict=True)
            ],
            V.INGREDIENTS: [
                ", ".join(taxonomy.parse_ingredients(f"{n} {d}"))
                for n, d in zip(names, description, strict=True)
            ],
            V.DESCRIPTION: description,
        }
    )
    return clean_products(frame, path)


def load(input_dir: str | Path) -> SourceTables:
    """Read the Hasaki catalogue and reviews; return family-level canonical tables."""
    directory = Path(input_dir)
    products_path = find_file(directory, (PRODUCTS_FILE,), "Hasaki product file")
    reviews_path = find_file(directory, (REVIEWS_FILE,), "Hasaki review file")
    catalogue, dropped_products = _catalogue(products_path)
    raw = read_table(reviews_path, REVIEW_COLUMNS)
    stamp = (
        raw["ngay_binh_luan"].astype("string").str.strip()
        + " "
        + raw["gio_binh_luan"].astype("string").str.strip()
    )
    reviews, dropped = clean_interactions(
        pd.DataFrame(
            {
                V.USER_ID: raw["ma_khach_hang"],
                V.PRODUCT_ID: raw["ma_san_pham"],
                V.RATING: raw["so_sao"],
                V.TIMESTAMP: stamp,
            }
        ),
        reviews_path,
        NAME,
        DATE_FORMAT,
        {V.TIMESTAMP: "ngay_binh_luan + gio_binh_luan", V.RATING: "so_sao"},
    )
    position = pd.Series(np.arange(len(catalogue)), index=catalogue[V.PRODUCT_ID])
    known = reviews[V.PRODUCT_ID].isin(position.index)
    if int((~known).sum()):
        dropped[UNKNOWN_PRODUCT] += int((~known).sum())
        reviews = reviews[known]
    text = (
        raw["noi_dung_binh_luan"] if "noi_dung_binh_luan" in raw else pd.Series("", index=raw.index)
    )
    reviews = reviews.assign(
        _text=text.loc[reviews.index].astype("string").fillna("").to_numpy(),
        order=position.loc[reviews[V.PRODUCT_ID]].to_numpy(),
        raw_row=reviews.index.to_numpy(),
    )
    reviews["event"] = reviews.groupby([V.USER_ID, V.TIMESTAMP, "_text"], sort=True).ngroup()
    family = product_families(reviews)
    reviews[V.PRODUCT_ID] = reviews[V.PRODUCT_ID].map(family)
    reviews = reviews.sort_values([V.TIMESTAMP, "raw_row"], kind="stable")
    unique = reviews.drop_duplicates([V.USER_ID, V.PRODUCT_ID], keep="first")
    merged: Counter[str] = Counter({VARIANT_COPY: len(reviews) - len(unique)})
    dropped.update(dropped_products)
    interactions = unique[list(V.INTERACTION_COLUMNS)].reset_index(drop=True)

    members = pd.Series(family)
    absorbed = set(members[members.index != members.to_numpy()].index)
    products = catalogue[~catalogue[V.PRODUCT_ID].isin(absorbed)].reset_index(drop=True)
    reviewers = interactions.groupby(V.PRODUCT_ID)[V.USER_ID].nunique()
    products[V.NUM_RATINGS] = products[V.PRODUCT_ID].map(reviewers).fillna(0).astype("int64")
    return SourceTables(
        NAME, products[list(CANONICAL_PRODUCT_COLUMNS)], interactions, dropped, merged
    )
