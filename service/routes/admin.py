"""Admin endpoints (token from the env var named by ``admin.token_env``): reload, caches,
experiments (per-variant table, stop, promote)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request

from recommender.config import load_training_settings
from recommender.errors import NotReadyError, RecsysError
from recommender.experiments import ExperimentRunner
from recommender.registry import Registry
from recommender.serving.redaction import public_message, serving_roots
from service.deps import (
    get_experiments,
    get_holder,
    get_settings,
    get_state,
    get_variant_models,
    require_admin,
)
from service.responses import OrjsonResponse, error_response
from service.schemas import NOT_READY, TOO_LARGE, ErrorResponse, ReloadResponse

router = APIRouter(
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        **TOO_LARGE,
        **NOT_READY,
        401: {"model": ErrorResponse, "description": "token missing"},
        403: {"model": ErrorResponse, "description": "token wrong, or admin disabled"},
    },
)


@router.post(
    "/reload_model",
    response_model=ReloadResponse,
    responses={
        503: {"model": ErrorResponse, "description": "load failed; old model still serving"}
    },
)
async def reload_model(request: Request) -> OrjsonResponse:
    """Load the registry's current model off the event loop and swap it in atomically."""
    holder = get_holder(request)
    result = await asyncio.to_thread(holder.reload)
    if not result.ok:
        return error_response(
            request,
            503,
            "reload_failed",
            f"{result.error} (still serving: {result.previous_model_id})",
            still_serving=result.previous_model_id,
        )
    return OrjsonResponse(
        {
            "status": "reloaded",
            "previous_model_id": result.previous_model_id,
            "model_id": result.model_id,
            "seconds": round(result.seconds, 3),
        }
    )


@router.post("/cache_clear")
async def cache_clear(request: Request) -> OrjsonResponse:
    """Empty both caches of the serving model (counters keep their history)."""
    state = get_state(request)
    state.caches.clear()
    return OrjsonResponse({"status": "cleared", **state.caches.stats()})


@router.post("/cache_warmup")
async def cache_warmup(request: Request) -> OrjsonResponse:
    """Run the warm-up now (bounded by warmup.max_seconds) and report it."""
    state = get_state(request)
    report = await asyncio.to_thread(get_holder(request).warm_up, False)
    return OrjsonResponse({"status": report.state if report else "skipped", **state.caches.stats()})


def _runner(request: Request) -> ExperimentRunner:
    runner = get_experiments(request)
    if runner is None:  # pragma: no cover - the lifespan always sets it
        raise NotReadyError("experiments are not set up yet")
    return runner


UNKNOWN_EXPERIMENT: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorResponse,
        "description": "unknown_experiment: no such experiment or variant",
    }
}


def _ledger_down(request: Request, exc: Exception) -> OrjsonResponse:
    return error_response(
        request,
        503,
        "ledger_unavailable",
        f"the experiment ledger cannot be read or written ({type(exc).__name__}); answers go on "
        "with the last known experiment states: check experiments.ledger_path / redis_url",
    )


def _unknown(request: Request, exc: KeyError) -> OrjsonResponse:
    return error_response(request, 404, "unknown_experiment", str(exc.args[0]))


@router.get("/experiments")
async def experiments(request: Request) -> OrjsonResponse:
    """The per-variant table of every configured experiment: impressions, CTR, add-to-cart and
    purchase rate, revenue per impression, 95% intervals, tests against control, a verdict."""
    runner = _runner(request)
    try:
        report = await asyncio.to_thread(runner.report)
    except runner.ledger.errors as exc:
        return _ledger_down(request, exc)
    models = get_variant_models(request)
    loaded = None if models is None else models.stats(get_holder(request).state)
    return OrjsonResponse({"experiments": report, "variant_models": loaded})


@router.post("/experiments/{name}/stop", responses=UNKNOWN_EXPERIMENT)
async def stop_experiment(name: str, request: Request) -> OrjsonResponse:
    """Stop an experiment on every worker: everyone gets the default settings again."""
    runner = _runner(request)
    try:
        await asyncio.to_thread(runner.stop, name)
    except KeyError as exc:
        return _unknown(request, exc)
    except runner.ledger.errors as exc:
        return _ledger_down(request, exc)
    return OrjsonResponse({"status": "stopped", "experiment": name})


PROMOTE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **UNKNOWN_EXPERIMENT,
    409: {
        "model": ErrorResponse,
        "description": "registry_refused: the winner's model failed the registry's promotion "
        "(quality gate: retry with ?force=true); the experiment keeps running",
    },
}


def _promote_model(request: Request, model_id: str, force: bool) -> str | None:
    """Make ``model_id`` the registry's current model and reload; the refusal's text if not."""
    registry = Registry(get_settings(request).paths.registry_dir)
    try:
        tolerance = load_training_settings().gate.tolerance
        registry.promote(model_id, force, tolerance)
    except RecsysError as exc:
        return str(exc)
    get_holder(request).reload()
    return None


@router.post("/experiments/{name}/promote/{variant}", responses=PROMOTE_RESPONSES)
async def promote_variant(
    name: str, variant: str, request: Request, force: bool = False
) -> OrjsonResponse:
    """Serve ``variant`` to everyone in the experiment (no more impressions are counted). A
    variant that names a ``model_id`` also promotes that model in the registry (quality-gated
    unless ``force``; every worker's poller follows); make weight or diversity settings
    permanent by moving them into the config."""
    runner = _runner(request)
    spec = runner.specs.get(name)
    chosen = spec.variant(variant) if spec is not None else None
    model_id = chosen.model_id if chosen is not None else None
    if model_id is not None:
        refused = await asyncio.to_thread(_promote_model, request, model_id, force)
        if refused is not None:
            message = public_message(refused, serving_roots(get_settings(request)))
            return error_response(request, 409, "registry_refused", message)
    try:
        await asyncio.to_thread(runner.promote, name, variant)
    except KeyError as exc:
        return _unknown(request, exc)
    except runner.ledger.errors as exc:
        return _ledger_down(request, exc)
    return OrjsonResponse(
        {"status": "promoted", "experiment": name, "winner": variant, "model_id": model_id}
    )
