"""GET /registry (read-only, public fields) and POST /registry/promote|rollback (admin token).

The console's model view and its promote/rollback buttons. The listing shows what /model_info
already shows of a model (id, type, status, dates, data/embedding versions, metrics), never its
directory, checksums or the registry's own path. Promote and rollback change the shared registry
(every worker's poller follows within ``reload.poll_interval_seconds``) and reload this worker at
once, so the answer names the model now serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from recommender.config import load_training_settings
from recommender.errors import ModelLoadError, QualityGateError, RecsysError, UnknownModelError
from recommender.registry import ModelRecord, Registry
from recommender.serving.redaction import public_message, serving_roots
from service.deps import get_holder, get_settings, require_admin
from service.responses import OrjsonResponse, error_response
from service.schemas import TOO_LARGE, ErrorResponse

router = APIRouter(tags=["registry"])

MODEL_ID_RULE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # registry.MODEL_ID_PATTERN
ADMIN_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "token missing"},
    403: {"model": ErrorResponse, "description": "token wrong, or admin disabled"},
}
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **TOO_LARGE,
    **ADMIN_REFUSALS,
    400: {"model": ErrorResponse, "description": "the body is not JSON"},
    404: {"model": ErrorResponse, "description": "unknown model id"},
    409: {"model": ErrorResponse, "description": "refused: quality gate, nothing to roll back to"},
    422: {"model": ErrorResponse, "description": "invalid input"},
    503: {"model": ErrorResponse, "description": "the registry cannot be read"},
}


class RegistryModel(BaseModel):
    model_id: str
    model_type: str
    status: str
    created_at: str
    data_version: str
    embedding_version: str | None
    gate_value: float | None = Field(description="test NDCG@10 of the trainable segment")
    metrics: dict[str, Any]


class RegistryResponse(BaseModel):
    current: str | None
    serving_model_id: str | None = Field(description="the model this worker serves now")
    history: list[str] = Field(description="previous current models, oldest first (rollback)")
    models: list[RegistryModel] = Field(description="every registered model, oldest first")


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str = Field(pattern=MODEL_ID_RULE, examples=["als-20260101T000000-abc123"])
    force: StrictBool = Field(False, description="promote past the quality gate")


class RegistryChangeResponse(BaseModel):
    status: str = Field(description="promoted | rolled_back")
    previous_model_id: str | None
    model_id: str = Field(description="the registry's current model now")
    serving_model_id: str | None = Field(description="the model this worker serves after reload")
    reload_error: str | None = Field(description="why this worker still serves the old model")


def _public(record: ModelRecord) -> dict[str, Any]:
    """The fields of a record anyone may read (no path, no checksums)."""
    return {
        "model_id": record.model_id,
        "model_type": record.model_type,
        "status": record.status,
        "created_at": record.created_at,
        "data_version": record.data_version,
        "embedding_version": record.embedding_version,
        "gate_value": record.gate_value,
        "metrics": record.metrics,
    }


def _registry(request: Request) -> Registry:
    return Registry(get_settings(request).paths.registry_dir)


def _serving_id(request: Request) -> str | None:
    state = get_holder(request).state
    return None if state is None else state.bundle.model_id


def _refusal(request: Request, exc: RecsysError) -> OrjsonResponse:
    """A registry error as a client error, its message free of host paths."""
    message = public_message(str(exc), serving_roots(get_settings(request)))
    if isinstance(exc, UnknownModelError):
        return error_response(request, 404, "unknown_model", message)
    if isinstance(exc, QualityGateError):
        return error_response(request, 409, "quality_gate", message)
    if isinstance(exc, ModelLoadError):
        return error_response(request, 409, "model_invalid", message)
    return error_response(request, 409, "registry_refused", message)


@router.get(
    "/registry",
    response_model=RegistryResponse,
    responses={503: {"model": ErrorResponse, "description": "the registry cannot be read"}},
)
async def registry_list(request: Request) -> OrjsonResponse:
    """Registered models, the current one and the rollback history (public fields only)."""
    registry = _registry(request)
    try:
        current = await asyncio.to_thread(registry.current)
        history = await asyncio.to_thread(registry.history)
        records = await asyncio.to_thread(registry.list)
    except RecsysError as exc:
        message = public_message(str(exc), serving_roots(get_settings(request)))
        return error_response(request, 503, "registry_unavailable", message)
    return OrjsonResponse(
        {
            "current": None if current is None else current.model_id,
            "serving_model_id": _serving_id(request),
            "history": history,
            "models": [_public(record) for record in records],
        }
    )


async def _reloaded(
    request: Request, status: str, previous: str | None, record: ModelRecord
) -> OrjsonResponse:
    result = await asyncio.to_thread(get_holder(request).reload)
    return OrjsonResponse(
        {
            "status": status,
            "previous_model_id": previous,
            "model_id": record.model_id,
            "serving_model_id": _serving_id(request),
            "reload_error": None if result.ok else result.error,
        }
    )


@router.post(
    "/registry/promote",
    response_model=RegistryChangeResponse,
    responses=CHANGE_RESPONSES,
    tags=["admin"],  # the admin token, declared in OpenAPI (service.openapi)
    dependencies=[Depends(require_admin)],
)
async def registry_promote(body: PromoteRequest, request: Request) -> OrjsonResponse:
    """Make a registered model current (quality-gated unless ``force``), then reload."""
    registry = _registry(request)
    try:
        previous = await asyncio.to_thread(registry.current)
        tolerance = load_training_settings().gate.tolerance
        record = await asyncio.to_thread(registry.promote, body.model_id, body.force, tolerance)
    except RecsysError as exc:
        return _refusal(request, exc)
    return await _reloaded(
        request, "promoted", None if previous is None else previous.model_id, record
    )


@router.post(
    "/registry/rollback",
    response_model=RegistryChangeResponse,
    responses=CHANGE_RESPONSES,
    tags=["admin"],  # the admin token, declared in OpenAPI (service.openapi)
    dependencies=[Depends(require_admin)],
)
async def registry_rollback(request: Request) -> OrjsonResponse:
    """Make the previous current model current again, then reload."""
    registry = _registry(request)
    try:
        previous = await asyncio.to_thread(registry.current)
        record = await asyncio.to_thread(registry.rollback)
    except RecsysError as exc:
        return _refusal(request, exc)
    return await _reloaded(
        request, "rolled_back", None if previous is None else previous.model_id, record
    )
