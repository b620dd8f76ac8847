"""The API styles the provider speaks, one module each, and the registry the connection picks from.

Adding a style: a module with an :class:`~airflow_provider_videogen.styles.base.ApiStyle` subclass,
and one line in :data:`STYLES` (the connection form's choices come from it).
"""

from __future__ import annotations

from airflow_provider_videogen.styles.base import ApiStyle
from airflow_provider_videogen.styles.bedrock import BedrockVideo
from airflow_provider_videogen.styles.contents_generations import ContentsGenerations
from airflow_provider_videogen.styles.dashscope import DashScope
from airflow_provider_videogen.styles.fal import Fal
from airflow_provider_videogen.styles.gemini_veo import GeminiVeo
from airflow_provider_videogen.styles.openai_videos import OpenAIVideos
from airflow_provider_videogen.styles.replicate import Replicate
from airflow_provider_videogen.styles.runway import Runway
from airflow_provider_videogen.styles.vertex_veo import VertexVeo
from airflow_provider_videogen.styles.video_generations import VideoGenerations

STYLES: dict[str, ApiStyle] = {
    style.name: style
    for style in (
        ContentsGenerations(),
        VideoGenerations(),
        OpenAIVideos(),
        DashScope(),
        Runway(),
        GeminiVeo(),
        Fal(),
        Replicate(),
        BedrockVideo(),
        VertexVeo(),
    )
}
"""Every API style by its connection ``api_style`` value; the first is the default."""


def get_style(name: str) -> ApiStyle:
    """Return the style called ``name`` (a value the connection settings already checked)."""
    return STYLES[name]


__all__ = ["STYLES", "ApiStyle", "get_style"]
