"""Validation of raw and canonical tables: file- and column-level errors, row-level drops.

Two kinds of problems, two behaviours:

- A missing or unreadable file, a missing required column, an empty table or a date/rating *column*
  that does not parse at all raises :class:`~recommender.errors.InvalidDataError` (or
  :class:`~recommender.errors.EmptyDataError`) naming the file, the column and what is expected.
- Individual bad rows (rating outside 1–5, missing id, unparseable timestamp, unknown product …) are
  dropped and counted per reason; the counts end up in ``data_stats.json`` under ``dropped_rows``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.errors import EmptyDataError, InvalidDataError

# drop reasons (keys of data_stats.json "dropped_rows")
MISSING_ID = "missing_id"
UNPARSEABLE_RATING = "unparseable_rating"
RATING_OUT_OF_RANGE = "rating_out_of_range"
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
UNKNOWN_PRODUCT = "unknown_product"
DUPLICATE_PRODUCT_ID = "duplicate_product_id"

RATING_MIN, RATING_MAX = 1.0, 5.0
# a date/rating column where more than this share of the non-empty values fails is a broken column
# (wrong format, wrong column), not a few bad rows
COLUMN_FAILURE_SHARE = 0.5
TIMESTAMP_DTYPE = "datetime64[ns]"

DropCounts = Counter  # reason -> number of rows dropped


def find_file(directory: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` in ``directory``; none -> InvalidDataError naming them all."""
    for name in candidates:
        path = directory / name
        if path.is_file():
            return path
    if not directory.is_dir():
        raise InvalidDataError(
            f"input directory {directory} does not exist (expected the {what} in it)."
        )
    raise InvalidDataError(
        f"{what} not found in {directory}: expected one of {', '.join(candidates)}."
    )


def read_table(path: Path, required: Iterable[str] = ()) -> pd.DataFrame:
    """Read a CSV or parquet file; unreadable, empty or missing a required column -> clear error."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise EmptyDataError(f"{path} is empty: expected a header row and data rows.") from exc
    except FileNotFoundError as exc:
        raise InvalidDataError(f"{path} not found.") from exc
    except (
        Exception
    ) as exc:  # parsers raise many types (UnicodeDecodeError, ArrowInvalid, ParserError)
        raise InvalidDataError(
            f"{path} is not a readable {path.suffix.lstrip('.') or 'CSV'} file "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    require_columns(frame, required, path)
    if frame.empty:
        raise EmptyDataError(f"{path} has no data rows: the dataset is empty.")
    return frame


def require_columns(frame: pd.DataFrame, required: Iterable[str], path: Path | str) -> None:
    """Raise InvalidDataError naming the first missing required column of ``path``."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InvalidDataError(
            f"{path}: required column '{missing[0]}' is missing"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
            + f". Expected columns include {', '.join(required)}; "
            + f"found {', '.join(map(str, frame.columns))}."
        )


def id_strings(values: pd.Series) -> pd.Series:
    """Ids as strings (``12`` not ``12.0``); missing or blank -> ``None``."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and bool(np.all(np.mod(finite, 1) == 0)):
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    present = (text.notna() & (text != "")).to_numpy(dtype=bool)
    return text.astype(object).where(present, None)


def _column_broken(parsed: pd.Series, raw: pd.Series) -> bool:
    present = raw.notna() & (raw.astype("string").str.strip() != "")
    total = int(present.sum())
    failed = int((parsed.isna() & present).sum())
    return total > 0 and failed > COLUMN_FAILURE_SHARE * total


def parse_timestamps(
    raw: pd.Series, path: Path | str, column: str, fmt: str | None = None
) -> pd.Series:
    """Parse a timestamp column to naive UTC ``datetime64[ns]``; bad values become NaT.

    Accepts datetimes, epoch seconds, or strings in ``fmt`` (ISO 8601 when ``None``). A column where
    most values fail raises InvalidDataError naming ``path`` and ``column`` and the expected format.
    """
    expected = fmt or "ISO 8601 (e.g. 2024-05-31 14:02:00) or epoch seconds"
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    elif pd.api.types.is_numeric_dtype(raw):
        parsed = pd.to_datetime(raw, unit="s", errors="coerce")
    else:
        parsed = pd.to_datetime(
            raw.astype("string").str.strip(),
            format=fmt or "ISO8601",
            errors="coerce",
            utc=fmt is None,
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    if _column_broken(parsed, raw):
        example = raw[parsed.isna() & raw.notna()].iloc[0]
        raise InvalidDataError(
            f"{path}: column '{column}' is not a parseable date/time (e.g. {example!r}); "
            f"expected {expected}."
        )
    return parsed.astype(TIMESTAMP_DTYPE)


def parse_ratings(raw: pd.Series, path: Path | str, column: str) -> pd.Series:
    """Ratings as float64; unparseable values become NaN. A column that is mostly text -> error."""
    parsed = pd.to_numeric(raw, errors="coerce").astype("float64")
    if _column_broken(parsed, raw):
        raise InvalidDataError(
            f"{path}: column '{column}' is not numeric (e.g. {raw[parsed.isna()].iloc[0]!r}); "
            f"expected ratings {RATING_MIN:g}–{RATING_MAX:g}."
        )
    return parsed


def _drop(frame: pd.DataFrame, bad: pd.Series, reason: str, counts: DropCounts) -> pd.DataFrame:
    n = int(bad.sum())
    if n:
        counts[reason] += n
        return frame.loc[~bad.to_numpy()]
    return frame


def clean_interactions(
    frame: pd.DataFrame,
    path: Path | str,
    source: str,
    timestamp_format: str | None = None,
    raw_names: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, DropCounts]:
    """Canonical interactions (:data:`vocabulary.INTERACTION_COLUMNS`); bad rows dropped, counted.

    ``frame`` must hold user_id, product_id, rating, timestamp; weight (default 1.0) and source
    (default ``source``) are optional. Weights that are missing or not positive become 1.0.
    ``raw_names`` maps canonical column names to the raw file's names, for error messages.
    Kept rows keep their index in ``frame`` (adapters align raw columns with it).
    """
    require_columns(frame, (V.USER_ID, V.PRODUCT_ID, V.RATING, V.TIMESTAMP), path)
    names = raw_names or {}
    counts: DropCounts = Counter()
    out = pd.DataFrame(
        {
            V.USER_ID: id_strings(frame[V.USER_ID]),
            V.PRODUCT_ID: id_strings(frame[V.PRODUCT_ID]),
            V.RATING: parse_ratings(frame[V.RATING], path, names.get(V.RATING, V.RATING)),
            V.TIMESTAMP: parse_timestamps(
                frame[V.TIMESTAMP], path, names.get(V.TIMESTAMP, V.TIMESTAMP), timestamp_format
            ),
        }
    )
    weight = pd.to_numeric(frame[V.WEIGHT], errors="coerce") if V.WEIGHT in frame else None
    out[V.WEIGHT] = 1.0 if weight is None else weight.where(weight > 0, 1.0).fillna(1.0).to_numpy()
    src = frame[V.SOURCE].astype("string").fillna(source) if V.SOURCE in frame else source
    out[V.SOURCE] = src if isinstance(src, str) else src.to_numpy()
    out = _drop(out, out[V.USER_ID].isna() | out[V.PRODUCT_ID].isna(), MISSING_ID, counts)
    out = _drop(out, out[V.RATING].isna(), UNPARSEABLE_RATING, counts)
    out = _drop(
        out,
        (out[V.RATING] < RATING_MIN) | (out[V.RATING] > RATING_MAX),
        RATING_OUT_OF_RANGE,
        counts,
    )
    out = _drop(out, out[V.TIMESTAMP].isna(), UNPARSEABLE_TIMESTAMP, counts)
    out = out.astype({V.USER_ID: "str", V.PRODUCT_ID: "str", V.SOURCE: "str", V.WEIGHT: "float64"})
    return out, counts


def _skin_list(value: object) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [str(v) for v in value]
    elif value is None or (isinstance(value, float) and np.isnan(value)):
        items = []
    else:
        text = str(value)
        items = text.split("|") if "|" in text else text.split(",")
    return [s.strip() for s in items if s and s.strip()]


def clean_products(frame: pd.DataFrame, path: Path | str) -> tuple[pd.DataFrame, DropCounts]:
    """Canonical products (:data:`vocabulary.PRODUCT_COLUMNS` without ``text``).

    Only product_id and name are required; other columns default to "" / NaN / 0 / []. Rows
    without an id and repeated ids (first kept) are dropped and counted.
    """
    require_columns(frame, (V.PRODUCT_ID, V.NAME), path)
    counts: DropCounts = Counter()
    n = len(frame)

    def text(col: str) -> pd.Series:
        if col not in frame:
            return pd.Series([""] * n, dtype="str")
        return frame[col].astype("string").fillna("").str.strip().astype("str")

    def number(col: str) -> pd.Series:
        if col not in frame:
            return pd.Series(np.full(n, np.nan))
        return pd.to_numeric(frame[col], errors="coerce").astype("float64")

    price = number(V.PRICE)
    rating = number(V.AVG_RATING)
    skin = frame[V.SKIN_TYPES] if V.SKIN_TYPES in frame else pd.Series([None] * n)
    out = pd.DataFrame(
        {
            V.PRODUCT_ID: id_strings(frame[V.PRODUCT_ID]).to_numpy(),
            V.NAME: text(V.NAME).to_numpy(),
            V.BRAND: text(V.BRAND).to_numpy(),
            V.CATEGORY: text(V.CATEGORY).to_numpy(),
            V.PRICE: price.where(price >= 0).to_numpy(),
            V.AVG_RATING: rating.where((rating >= 0) & (rating <= RATING_MAX)).to_numpy(),
            V.NUM_RATINGS: number(V.NUM_RATINGS).fillna(0).clip(lower=0).astype("int64").to_numpy(),
            V.NUM_SOLD: number(V.NUM_SOLD).fillna(0).clip(lower=0).astype("int64").to_numpy(),
            V.SKIN_TYPES: [_skin_list(v) for v in skin],
            V.INGREDIENTS: text(V.INGREDIENTS).to_numpy(),
            V.DESCRIPTION: text(V.DESCRIPTION).to_numpy(),
        }
    )
    out = _drop(out, out[V.PRODUCT_ID].isna(), MISSING_ID, counts)
    out = _drop(out, out[V.PRODUCT_ID].duplicated(keep="first"), DUPLICATE_PRODUCT_ID, counts)
    out[V.PRODUCT_ID] = out[V.PRODUCT_ID].astype("str")
    if out.empty:
        raise EmptyDataError(f"{path}: no valid product rows (every row lacks a product_id).")
    return out.reset_index(drop=True), counts


def merge_counts(*counts: DropCounts | dict[str, int]) -> dict[str, int]:
    """Sum drop counters into one plain, key-sorted dict."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return {k: int(v) for k, v in sorted(total.items()) if v}
