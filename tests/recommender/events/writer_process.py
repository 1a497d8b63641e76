"""A writer process for the multi-process and kill -9 tests: appends batches, prints each ack.

``python -m tests.recommender.events.writer_process PATH PREFIX BATCHES BATCH_SIZE`` appends
``BATCHES`` batches (0 = forever) of ``BATCH_SIZE`` events with ids ``<PREFIX>-<batch>-<i>`` and
prints ``<batch> <seq,seq,...>`` after each acknowledged batch.
"""

from __future__ import annotations

import itertools
import sys

from recommender.events import Event, SqliteEventStore


def main(path: str, prefix: str, batches: int, size: int) -> None:
    store = SqliteEventStore(path)
    numbers = itertools.count() if batches == 0 else range(batches)
    for batch in numbers:
        events = [
            Event(f"{prefix}-{batch}-{i}", f"user-{prefix}", f"p{i}", "view", 1_700_000_000.0 + i)
            for i in range(size)
        ]
        seqs = store.append(events)
        print(batch, ",".join(map(str, seqs)), flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
