"""Operators of the VideoGen provider: thin wrappers that build the hook, make the call and decide.

Each operator has its own module (:mod:`~airflow_provider_videogen.operators.fetch`,
:mod:`~airflow_provider_videogen.operators.generate`,
:mod:`~airflow_provider_videogen.operators.generate_many`), and all land videos through
:mod:`~airflow_provider_videogen.operators.landing_step`; their names stay importable from here.
"""

from __future__ import annotations

from airflow_provider_videogen.operators.fetch import FetchVideoOperator
from airflow_provider_videogen.operators.generate import GenerateVideoOperator
from airflow_provider_videogen.operators.generate_many import GenerateVideosOperator
from airflow_provider_videogen.operators.landing_step import ASSET_EXTRA_KEYS, asset_event_extra, emit_asset_events

__all__ = [
    "ASSET_EXTRA_KEYS",
    "FetchVideoOperator",
    "GenerateVideoOperator",
    "GenerateVideosOperator",
    "asset_event_extra",
    "emit_asset_events",
]
