"""Injected long-lived objects (born in the lifespan, kept on ``app.state``) and admin auth."""

from __future__ import annotations

import hmac
import os

from fastapi import Request

from recommender.config.serving import ServingSettings
from recommender.events import EventStore
from recommender.experiments import ExperimentRunner
from recommender.serving import ModelHolder, ServingState
from recommender.serving.variant_models import VariantModels
from service.batch import BatchSlots
from service.errors import AdminAuthError
from service.metrics import Metrics

INGEST_TOKEN_ENV = "RECSYS_INGEST_TOKEN"


def get_settings(request: Request) -> ServingSettings:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_batch_slots(request: Request) -> BatchSlots:
    return request.app.state.batch_slots


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


def get_experiments(request: Request) -> ExperimentRunner | None:
    """The process's experiment runner (``None`` before the lifespan created it)."""
    return getattr(request.app.state, "experiments", None)


def get_variant_models(request: Request) -> VariantModels | None:
    """The models A/B variants name, loaded beside the default (``None`` before the lifespan)."""
    return getattr(request.app.state, "variant_models", None)


def get_store(request: Request) -> EventStore:
    """The process's event store (opened in the lifespan, closed at shutdown)."""
    return request.app.state.event_store


def require_ingest(request: Request) -> None:
    """``X-Ingest-Token`` against ``$RECSYS_INGEST_TOKEN``; closed (403) when that is unset."""
    refusal = _token_refusal(
        os.environ.get(INGEST_TOKEN_ENV, ""),
        request.headers.get("x-ingest-token"),
        disabled=(
            "ingest_disabled",
            f"event ingestion is disabled: set the {INGEST_TOKEN_ENV} environment variable to a "
            "secret token, restart, and send it as X-Ingest-Token",
        ),
        missing="ingest token required: send X-Ingest-Token",
        invalid="ingest token is not valid",
    )
    if refusal is not None:
        raise refusal


def _token_refusal(
    expected: str,
    provided: str | None,
    *,
    disabled: tuple[str, str],
    missing: str,
    invalid: str,
) -> AdminAuthError | None:
    """Why ``provided`` does not pass for ``expected`` (None when it does): no configured token
    closes the endpoint (403 ``disabled``), a missing one is 401, a wrong one 403."""
    if not expected:
        return AdminAuthError(403, *disabled)
    if not provided:
        return AdminAuthError(401, "unauthorized", missing)
    if not hmac.compare_digest(provided.encode(), expected.encode()):
        return AdminAuthError(403, "forbidden", invalid)
    return None


def get_state(request: Request) -> ServingState:
    """The serving state for this request (NotReadyError -> 503 when no model is loaded)."""
    return request.app.state.holder.require()


def _admin_refusal(request: Request) -> AdminAuthError | None:
    """Why the request is not an admin request (None when its token is valid)."""
    variable = request.app.state.settings.admin.token_env
    provided = request.headers.get("x-admin-token")
    if provided is None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        provided = token.strip() if scheme.lower() == "bearer" else None
    return _token_refusal(
        os.environ.get(variable, ""),
        provided,
        disabled=(
            "admin_disabled",
            f"admin endpoints are disabled: set the {variable} environment variable "
            "(admin.token_env) to a secret token and restart",
        ),
        missing="admin token required: send X-Admin-Token or Authorization: Bearer",
        invalid="admin token is not valid",
    )


def require_admin(request: Request) -> None:
    """Admin token check: ``X-Admin-Token: <t>`` or ``Authorization: Bearer <t>``.

    The token lives in the environment variable named by ``admin.token_env``; when that variable
    is unset or empty, admin endpoints are disabled (403), never open.
    """
    refusal = _admin_refusal(request)
    if refusal is not None:
        raise refusal


def is_admin(request: Request) -> bool:
    """True when the request carries the valid admin token (public endpoints show it more)."""
    return _admin_refusal(request) is None
