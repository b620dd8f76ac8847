"""The trigger's event protocol: one table from an event to what each waiter raises."""

from __future__ import annotations

import pytest

from airflow_provider_videogen._compat import AirflowFailException, AirflowSensorTimeout
from airflow_provider_videogen.events import EVENT_STATUSES, raise_for_event
from airflow_provider_videogen.exceptions import VideoGenerationFailedError, VideoGenError, VideoTaskFailedError


def event(status: str) -> dict:
    return {
        "status": status,
        "video_task_id": "cgt-1",
        "task": {"id": "cgt-1", "status": "succeeded"} if status == "success" else None,
        "message": f"the wait ended: {status}",
        "error_code": "Code" if status in ("failed", "error") else None,
        "error_message": "why" if status in ("failed", "error") else None,
    }


@pytest.mark.parametrize("waiter", ["sensor", "operator"])
def test_a_success_event_returns_its_task(waiter):
    assert raise_for_event(event("success"), waiter) == {"id": "cgt-1", "status": "succeeded"}


@pytest.mark.parametrize(
    ("waiter", "status", "error_class", "final"),
    [
        ("sensor", "failed", VideoTaskFailedError, True),
        ("sensor", "timeout", AirflowSensorTimeout, False),
        ("sensor", "error", VideoGenError, False),
        ("operator", "failed", VideoGenerationFailedError, False),  # a retry submits a new generation
        ("operator", "timeout", VideoGenError, False),
        ("operator", "error", VideoGenError, False),
    ],
)
def test_every_other_event_raises_what_it_means_for_the_waiter(waiter, status, error_class, final):
    with pytest.raises(error_class, match=f"the wait ended: {status}") as caught:
        raise_for_event(event(status), waiter)
    assert type(caught.value) is error_class
    assert isinstance(caught.value, AirflowFailException) is final
    if isinstance(caught.value, VideoGenError):
        assert caught.value.video_task_id == "cgt-1"
        assert caught.value.api_code == event(status)["error_code"]


def test_the_table_covers_every_status_for_both_waiters():
    from airflow_provider_videogen.events import _EXCEPTIONS

    assert {status for _, status in _EXCEPTIONS} | {"success"} == set(EVENT_STATUSES)
    assert {waiter for waiter, _ in _EXCEPTIONS} == {"sensor", "operator"}
