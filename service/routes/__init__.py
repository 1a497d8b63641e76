"""One APIRouter per resource; a route validates, calls one engine method, shapes the response."""

from service.routes import admin, health, recommend, similar, stats

ROUTERS = (recommend.router, similar.router, health.router, stats.router, admin.router)

__all__ = ["ROUTERS"]
