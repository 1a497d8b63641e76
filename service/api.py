"""The FastAPI application ``uvicorn service.api:app`` (settings: ``config/serving_config.yaml``).

:func:`create_app` wires settings, metrics, CORS, the request guard, error handlers and routers;
the lifespan loads the current model (or takes the one gunicorn's master preloaded,
:mod:`service.preload`) into a :class:`~recommender.serving.ModelHolder`, starts the
registry poller and cache warm-up, takes SIGTERM over for drain-then-stop, and stops the poller
on shutdown. Startup never fails for lack
of a model: /health answers 503 with the reason until a build + reload (or the poller) loads one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from recommender.config import ServingSettings, load_serving_settings
from recommender.events import open_event_store
from recommender.experiments import ExperimentRunner, open_ledger
from recommender.serving import LiveFeed, ModelBundle, ModelHolder, ReloadResult, load_bundle
from recommender.serving.variant_models import VariantModels
from service.batch import BatchSlots
from service.direct import DirectRoutes
from service.errors import install_error_handlers
from service.heap import freeze_after_load
from service.log_format import configure_logging
from service.metrics import Metrics
from service.middleware import RequestGuard
from service.openapi import install_openapi
from service.preload import take_preloaded
from service.responses import OrjsonResponse
from service.routes import ROUTERS, events, recommend, similar
from service.shutdown import Drain

logger = logging.getLogger("service")


def _telemetry_off() -> dict[str, Any]:
    """FastAPI's OpenTelemetry hooks run on every request even with no provider configured; the
    service exports Prometheus metrics (/metrics) instead. Releases before ``fastapi.telemetry``
    (the pyproject floor among them) have no hooks and no such argument."""
    try:
        import fastapi.telemetry  # noqa: F401
    except ImportError:
        return {}
    return {
        "telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    }


def create_app(
    settings: ServingSettings | None = None,
    loader: Callable[[ServingSettings], ModelBundle] | None = None,
    variant_loader: Callable[[ServingSettings, str], ModelBundle] | None = None,
) -> FastAPI:
    """Build the app. ``settings`` default to the config files; ``loader`` (tests) replaces
    :func:`load_bundle`, ``variant_loader`` its by-model-id form for A/B variant models."""
    settings = settings or load_serving_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics: Metrics = app.state.metrics
        store = open_event_store(settings.events)  # one per process; never connects eagerly
        app.state.event_store = store
        # impressions + attributed outcomes, shared by the host's (redis: every host's) workers
        ledger = open_ledger(settings.experiments)
        runner = ExperimentRunner(settings.experiments, ledger)
        app.state.experiments = runner
        metrics.collector.experiments = runner
        variant_models = VariantModels(settings, variant_loader)
        app.state.variant_models = variant_models
        metrics.collector.variant_models = variant_models
        feed = LiveFeed(
            store,
            settings.events,
            on_store_error=metrics.record_store_error,
            on_lag=metrics.record_replication_lag,
        )

        def sync_variant_models() -> None:
            """Variant models follow the default (rebound to its live state) and the states."""
            variant_models.sync(app.state.holder.state, runner.wanted_models())

        def on_reload(result: ReloadResult) -> None:
            metrics.record_reload(result)
            if result.ok and settings.experiments.variant_model_ids():
                sync_variant_models()
            if settings.reload.freeze_gc:
                freeze_after_load(result)  # the new model out of the collector's full passes

        if settings.experiments.variant_model_ids():
            runner.on_states_changed = lambda: threading.Thread(
                target=sync_variant_models, name="ab-variant-models", daemon=True
            ).start()

        holder = ModelHolder(
            settings,
            loader=app.state.loader,
            on_reload=on_reload,
            live_feed=feed,
        )
        app.state.holder = holder
        app.state.batch_slots = BatchSlots(settings.batch)  # an asyncio object: inside the loop
        metrics.collector.holder = holder
        # under gunicorn's preloading master (config/gunicorn.conf.py) the bundle it loaded
        result = await asyncio.to_thread(holder.reload, preloaded=take_preloaded(app))
        if not result.ok:
            logger.error("starting without a model: %s", result.error)
        holder.start_polling()
        feed.start()
        ledger.start()
        app.state.drain.install()  # SIGTERM: drain, then stop (see service/shutdown.py)
        try:
            yield
        finally:
            holder.stop()
            feed.stop()
            ledger.close()
            store.close()

    # /docs and /redoc with Swagger UI / ReDoc assets shipped by fastapi-offline (served under
    # /static-offline-docs), so the docs work without internet access
    app = FastAPIOffline(
        title="Vietnamese cosmetics recommender",
        version="1.0.0",
        description="Recommendations (CF, cold-start hybrid, popularity), similar items, ops.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        **_telemetry_off(),
        # Swagger UI would otherwise ask an external validator service about the schema
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.settings = settings
    app.state.loader = loader or load_bundle  # also the preloading master's (service/preload.py)
    install_openapi(app, settings)
    app.state.drain = Drain(settings.shutdown.drain_seconds)
    routes = [route for router in ROUTERS for route in router.routes]
    app.state.metrics = Metrics(getattr(r, "path", "") for r in routes)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    direct = [*events.router.routes, *recommend.router.routes, *similar.router.routes]
    app.add_middleware(
        RequestGuard,
        metrics=app.state.metrics,
        max_body_bytes=settings.requests.max_body_bytes,
        drain=app.state.drain,
        direct=DirectRoutes(direct),  # service.direct
    )
    if settings.cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allow_origins,
            allow_methods=settings.cors.allow_methods,
            allow_headers=settings.cors.allow_headers,
        )
    return app


app = create_app()
