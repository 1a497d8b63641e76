"""BPR with uniform negatives: one sequential SGD pass per epoch, compiled with numba.

The loop is per sample (Rendle et al. 2009, Algorithm 1 "LearnBPR", with a bias per item): an
epoch is ``nnz`` draws of a positive ``(u, i)`` uniformly with replacement (bootstrap sampling,
as LearnBPR and implicit do; a full shuffle per epoch cost a quarter of the time), then ``j``
uniformly from the catalogue (redrawn up to :data:`RESAMPLE_ROUNDS` times while ``u`` has ``j``);
with ``x = p_u·(q_i − q_j) + b_i − b_j``
and ``z = σ(−x)`` (the gradient of ``ln σ(x)``)::

    p_u += lr (z (q_i − q_j) − reg p_u)
    q_i += lr (z p_u − reg q_i)          # p_u before this step's update
    q_j += lr (−z p_u − reg q_j)
    b_i += lr (z − reg b_i);  b_j += lr (−z − reg b_j)

No threads (no Hogwild), and the random stream is a splitmix64 generator seeded from the
``numpy`` generator of ``random_state``: the factors are a pure function of the data and the seed
on a given machine (``fastmath`` lets LLVM vectorise the dot product in float32, so a CPU with
other SIMD widths may differ in the last bits). Speed (``scripts/benchmark_bpr.py``, CPU seconds
on a shared 2-core machine): ~0.016 s an epoch on 100K interactions × 64 factors against ~0.4 s
for the numpy mini-batches it replaced.
``implicit``'s BPR is not used here because its sampler draws negatives by popularity (the item of
a random interaction), which is exactly what this sampler exists to avoid.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import scipy.sparse as sp

RESAMPLE_ROUNDS = 5  # redraws of a negative the user already has (then it is used as drawn)


@numba.njit(cache=True, inline="always")
def _next(state: np.ndarray) -> np.uint64:  # pragma: no cover - compiled
    """splitmix64: advance ``state[0]`` and return the next 64 random bits."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _below(state: np.ndarray, n: int) -> int:  # pragma: no cover - compiled
    """Uniform integer in ``[0, n)``, ``n < 2**32``: the top 32 bits scaled by ``n`` (Lemire's
    multiply-shift; bias < n / 2**32, and no division)."""
    return int(((_next(state) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@numba.njit(cache=True, inline="always")
def _has(indptr: np.ndarray, indices: np.ndarray, user: int, item: int) -> bool:
    # pragma: no cover - compiled; indices of a canonical CSR row are sorted
    lo, hi = indptr[user], indptr[user + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    return lo < indptr[user + 1] and indices[lo] == item


@numba.njit(cache=True, fastmath=True, nogil=True)
def sgd_epochs(
    indptr: np.ndarray,
    indices: np.ndarray,
    users: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    bias: np.ndarray,
    learning_rate: float,
    regularization: float,
    epochs: int,
    seed: np.uint64,
) -> None:  # pragma: no cover - compiled; tests check it against a numpy step
    """Run ``epochs`` × ``nnz`` SGD steps on the positives ``(users[k], indices[k])`` in place."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = seed
    sgd_epochs_from(
        indptr, indices, users, p, q, bias, learning_rate, regularization, epochs, state
    )


@numba.njit(cache=True, fastmath=True, nogil=True)
def sgd_epochs_from(
    indptr: np.ndarray,
    indices: np.ndarray,
    users: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    bias: np.ndarray,
    learning_rate: float,
    regularization: float,
    epochs: int,
    state: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`sgd_epochs` continuing the random stream in ``state`` (advanced in place), so
    epochs run in chunks (tuning's pruning checks) give the same factors as one call."""
    n_samples = users.shape[0]
    n_items = q.shape[0]
    f = q.shape[1]
    lr = q.dtype.type(learning_rate)
    reg = q.dtype.type(regularization)
    one = q.dtype.type(1.0)
    bound = q.dtype.type(35.0)
    # (user << 32 | item) per positive: one load per draw
    pairs = (users << np.int64(32)) | indices
    diff = np.empty(f, dtype=q.dtype)
    for _ in range(epochs):
        for _k in range(n_samples):
            pair = pairs[_below(state, n_samples)]  # bootstrap draw, as in LearnBPR
            u = pair >> np.int64(32)
            i = pair & np.int64(0xFFFFFFFF)
            j = _below(state, n_items)
            for _r in range(RESAMPLE_ROUNDS):
                if not _has(indptr, indices, u, j):
                    break
                j = _below(state, n_items)
            x = bias[i] - bias[j]
            for c in range(f):
                diff[c] = q[i, c] - q[j, c]
                x += p[u, c] * diff[c]
            z = one / (one + np.exp(min(max(x, -bound), bound)))
            for c in range(f):
                pu = p[u, c]
                p[u, c] += lr * (z * diff[c] - reg * pu)
                q[i, c] += lr * (z * pu - reg * q[i, c])
                q[j, c] += lr * (-z * pu - reg * q[j, c])
            bias[i] += lr * (z - reg * bias[i])
            bias[j] += lr * (-z - reg * bias[j])


def fit_uniform(
    binary: sp.csr_matrix,
    factors: int,
    learning_rate: float,
    regularization: float,
    iterations: int,
    random_state: int,
    on_chunk: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    every: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(U, V)`` float32 with implicit's layout (users' last column 1, items' last the bias).

    ``on_chunk(epochs_done, U, V)`` is called after every ``every`` epochs but the last (tuning's
    intermediate values; it may raise to stop the fit); the factors do not depend on ``every``.
    """
    binary = sp.csr_matrix(binary)
    binary.sort_indices()
    rng = np.random.default_rng(random_state)
    n_users, n_items = binary.shape
    # float32 as served: half the memory traffic of float64, twice the SIMD width
    p = ((rng.random((n_users, factors)) - 0.5) / factors).astype(np.float32)
    q = ((rng.random((n_items, factors)) - 0.5) / factors).astype(np.float32)
    bias = np.zeros(n_items, dtype=np.float32)
    indptr = binary.indptr.astype(np.int64)
    indices = binary.indices.astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
    state = np.array([rng.integers(0, 2**63, dtype=np.int64)], dtype=np.uint64)
    chunk = every if on_chunk is not None and every > 0 else int(iterations)
    done = 0
    while users.size and n_items and done < iterations:
        epochs = min(chunk, int(iterations) - done)
        try:
            sgd_epochs_from(
                indptr,
                indices,
                users,
                p,
                q,
                bias,
                float(learning_rate),
                float(regularization),
                epochs,
                state,
            )
        except ZeroDivisionError as exc:  # fastmath: a non-finite score divides by "zero"
            raise FloatingPointError(
                f"BPR diverged (non-finite factors) within epochs {done + 1}-{done + epochs} at "
                f"learning_rate={learning_rate}, regularization={regularization}; lower the "
                "learning rate"
            ) from exc
        done += epochs
        if not (np.isfinite(p).all() and np.isfinite(q).all()):
            raise FloatingPointError(
                f"BPR diverged (non-finite factors) within epochs 1-{done} at learning_rate="
                f"{learning_rate}, regularization={regularization}; lower the learning rate"
            )
        if on_chunk is not None and done < iterations:
            on_chunk(done, *_layout(p, q, bias))
    return _layout(p, q, bias)


def _layout(p: np.ndarray, q: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    user_factors = np.hstack([p, np.ones((p.shape[0], 1))]).astype(np.float32)
    item_factors = np.hstack([q, bias[:, None]]).astype(np.float32)
    return user_factors, item_factors
