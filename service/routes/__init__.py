"""One APIRouter per resource; a route validates, calls one engine method, shapes the response."""

from service.routes import (
    admin,
    console,
    events,
    health,
    products,
    recommend,
    registry,
    similar,
    stats,
    users,
)

ROUTERS = (
    recommend.router,
    similar.router,
    events.router,
    products.router,
    health.router,
    stats.router,
    admin.router,
    registry.router,
    users.router,
    console.router,
)

__all__ = ["ROUTERS"]
