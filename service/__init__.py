"""HTTP layer (FastAPI) over :mod:`recommender.serving`: schemas, routes, errors, metrics.

Offers :func:`service.api.create_app` and the ASGI app ``service.api:app``.

Importing the package pins BLAS/OpenMP to one thread per process unless the operator set the
variables: a request multiplies matrices of a few thousand cells, where thread hand-offs cost more
than they save, and on a busy host (several workers per core) spinning BLAS threads turned a
0.2 ms product into 15 ms. Scale with ``--workers`` instead.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
