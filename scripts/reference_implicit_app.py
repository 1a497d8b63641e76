"""The minimal peer the serving benchmark measures us against: FastAPI + ``implicit`` over the
same factor files, top-10 with already-seen items filtered, nothing else (no blend, no MMR, no
product records, no caches).

Run: ``RECSYS_PATHS__PROCESSED_DIR=... RECSYS_PATHS__REGISTRY_DIR=... uvicorn
reference_implicit_app:app --app-dir scripts``. ``POST /recommend {"user_id": ..., "topk": 10}``
answers the product ids of a user with a CF row; any other user gets 404.
"""

from __future__ import annotations

import json
import os

# one BLAS/OpenMP thread per process, as the service pins itself (service/__init__.py): with
# FastAPI's thread pool running 16 requests at once, implicit's multi-threaded top-k over 50K
# items spun both cores (60 ms of CPU per request at 1M × 50K) and measured thread contention,
# not the peer
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from pathlib import Path  # noqa: E402 - after the thread pins, before numpy and implicit
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from fastapi import FastAPI, HTTPException  # noqa: E402
from implicit.cpu.als import AlternatingLeastSquares  # noqa: E402

PROCESSED = Path(os.environ.get("RECSYS_PATHS__PROCESSED_DIR", "data/processed"))
REGISTRY = Path(os.environ.get("RECSYS_PATHS__REGISTRY_DIR", "artifacts/cf"))


def _load() -> tuple[AlternatingLeastSquares, dict[str, int], list[str], sp.csr_matrix]:
    current = json.loads((REGISTRY / "registry.json").read_text())["current"]
    folder = (
        REGISTRY / json.loads((REGISTRY / "registry.json").read_text())["models"][current]["path"]
    )
    users = json.loads((PROCESSED / "trainable_user_mapping.json").read_text())["user_ids"]
    items = json.loads((PROCESSED / "user_item_mappings.json").read_text())["item_ids"]
    model = AlternatingLeastSquares(factors=int(np.load(folder / "V.npy").shape[1]))
    model.user_factors = np.load(folder / "U.npy").astype(np.float32)
    model.item_factors = np.load(folder / "V.npy").astype(np.float32)
    user_row = {str(u): i for i, u in enumerate(users)}
    item_col = {str(p): i for i, p in enumerate(items)}
    table = pq.read_table(PROCESSED / "interactions.parquet", columns=["user_id", "product_id"])
    pairs = [
        (user_row[str(u)], item_col[str(p)])
        for u, p in zip(table["user_id"].to_pylist(), table["product_id"].to_pylist(), strict=True)
        if str(u) in user_row and str(p) in item_col
    ]
    rows, cols = (np.array(x, dtype=np.int64) for x in zip(*pairs, strict=True))
    seen = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items))
    )
    return model, user_row, [str(p) for p in items], seen


MODEL, USER_ROW, ITEM_IDS, SEEN = _load()
app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/recommend")
def recommend(body: dict[str, Any]) -> dict[str, Any]:
    row = USER_ROW.get(str(body.get("user_id")))
    if row is None:
        raise HTTPException(404, "no CF row for this user")
    ids, scores = MODEL.recommend(
        row, SEEN[row], N=int(body.get("topk", 10)), filter_already_liked_items=True
    )
    return {
        "user_id": body["user_id"],
        "recommendations": [
            {"product_id": ITEM_IDS[i], "score": float(s)} for i, s in zip(ids, scores, strict=True)
        ],
    }
