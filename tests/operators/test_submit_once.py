"""Submit once: the intent written before a create call, and what a create that fails leaves of it."""

from __future__ import annotations

import pytest

from airflow_provider_videogen.exceptions import VideoGenAPIError
from tests.operators.test_generate import context, operator
from tests.task_context import FakeStateStore


def test_a_refused_create_leaves_no_intent_behind(sim, videogen_connection):
    store = FakeStateStore()
    with pytest.raises(VideoGenAPIError, match="InputTextSensitiveContentDetected"):
        operator(prompt="[sim:input-moderation] a fox").execute(context(store))
    assert store.values == {}
