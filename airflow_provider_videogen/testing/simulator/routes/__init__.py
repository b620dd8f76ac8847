"""The API styles the simulator serves, one module each, all on one port (they differ by path).

Adding a style: a module with a :class:`~airflow_provider_videogen.testing.simulator.routes.base.StyleRoutes`
subclass, and one line in :data:`ROUTES`. The server asks each style in this order whether a request
is its own; a path no style claims is answered 404.
"""

from __future__ import annotations

from airflow_provider_videogen.testing.simulator.routes.base import StyleRoutes
from airflow_provider_videogen.testing.simulator.routes.bedrock import BedrockRoutes
from airflow_provider_videogen.testing.simulator.routes.contents_generations import ContentsGenerationsRoutes
from airflow_provider_videogen.testing.simulator.routes.dashscope import DashScopeRoutes
from airflow_provider_videogen.testing.simulator.routes.fal import FalRoutes
from airflow_provider_videogen.testing.simulator.routes.gemini_veo import GeminiVeoRoutes
from airflow_provider_videogen.testing.simulator.routes.openai_videos import OpenAIVideosRoutes
from airflow_provider_videogen.testing.simulator.routes.replicate import ReplicateRoutes
from airflow_provider_videogen.testing.simulator.routes.runway import RunwayRoutes
from airflow_provider_videogen.testing.simulator.routes.vertex_veo import VertexVeoRoutes
from airflow_provider_videogen.testing.simulator.routes.video_generations import VideoGenerationsRoutes

# DashScope before Runway: its ``/api/v1/tasks/{id}`` also ends like Runway's ``/v1/tasks/{id}``.
ROUTES: tuple[StyleRoutes, ...] = (
    ContentsGenerationsRoutes(),
    VideoGenerationsRoutes(),
    OpenAIVideosRoutes(),
    DashScopeRoutes(),
    RunwayRoutes(),
    VertexVeoRoutes(),  # before Gemini's (whose create route ends its paths too) and fal (POSTs)
    GeminiVeoRoutes(),
    ReplicateRoutes(),  # before fal: its creates are POSTs of two segments or more too
    BedrockRoutes(),  # /async-invoke: before fal, whose create takes any POST of two segments
    FalRoutes(),  # last: a POST no other style claims is a fal create
)
"""Every style's routes, in the order requests are matched."""

STYLES = tuple(routes.name for routes in ROUTES)
"""The names of the styles served (``add_task(style=...)`` values)."""

_BY_NAME = {name: routes for routes in ROUTES for name in (routes.name, *routes.aliases)}


def style_routes(style: str) -> StyleRoutes:
    """Return the routes of ``style`` (a name or an alias); raise ``ValueError`` for another value."""
    try:
        return _BY_NAME[style]
    except (KeyError, TypeError):
        raise ValueError(f"style must be one of {STYLES}") from None


__all__ = ["ROUTES", "STYLES", "StyleRoutes", "style_routes"]
