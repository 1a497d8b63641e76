"""One APIRouter per resource; a route validates, calls one engine method, shapes the response."""

from service.routes import admin, events, health, products, recommend, similar, stats

ROUTERS = (
    recommend.router,
    similar.router,
    events.router,
    products.router,
    health.router,
    stats.router,
    admin.router,
)

__all__ = ["ROUTERS"]
