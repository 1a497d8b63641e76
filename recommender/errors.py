"""The error hierarchy: every message says what went wrong, where, and how to fix it.

The CLI prints these as one line and exits non-zero; the service maps them to HTTP in one handler.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(RecsysError):
    """A configuration file, overlay or RECSYS_* variable is invalid."""


class InvalidDataError(RecsysError):
    """Input data is missing, unreadable or lacks a required column."""


class EmptyDataError(InvalidDataError):
    """Input data is valid but leaves nothing to work with (no rows, no trainable users)."""


class EncoderError(RecsysError):
    """A text encoder is unknown, or its model path cannot be loaded."""


class ModelLoadError(RecsysError):
    """A model version cannot be loaded: missing/corrupt file, checksum or version mismatch."""


class RegistryError(RecsysError):
    """The model registry is unreadable, inconsistent, or an operation on it is refused."""


class UnknownModelError(RegistryError):
    """A model id is not in the registry."""


class QualityGateError(RegistryError):
    """Promotion refused: the candidate is worse than the current model beyond the tolerance."""


class UnknownProductError(RecsysError):
    """A product id is not in the loaded catalogue."""


class InvalidRequestError(RecsysError):
    """A request parameter is invalid (bad rerank weights, filters, topk)."""


class NotReadyError(RecsysError):
    """No model is loaded yet, so the request cannot be served."""


class InvalidEventError(InvalidRequestError):
    """An ingested event or product update is invalid; names the item index and field.

    ``index`` is the item's position in the batch (0 for a single item) and ``field`` the
    offending key, so the service can return them in its 422 body.
    """

    def __init__(self, message: str, *, index: int, field: str) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


class StoreUnavailableError(RecsysError):
    """The event store cannot be written or read now (down, locked, read-only, disk full).

    Raised instead of the backend's own exception so the service can answer 503 with
    ``reason`` and keep recommending from the model; nothing was acknowledged.
    """

    def __init__(self, message: str, *, backend: str, reason: str) -> None:
        super().__init__(message)
        self.backend = backend
        self.reason = reason
