"""``RetryPolicy``: a policy that cannot work is refused when it is written, naming the field at fault."""

from __future__ import annotations

import pytest

from airflow_provider_videogen.retry import RetryPolicy


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", 0.5),
        ("max_attempts", True),
        ("max_attempts", "3"),
        ("max_seconds", 0),
        ("max_seconds", float("inf")),
        ("initial_wait", -1.0),
        ("initial_wait", float("nan")),
        ("max_wait", float("inf")),
        ("max_retry_after", True),
    ],
)
def test_a_field_that_is_not_finite_in_range_and_a_number_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        RetryPolicy(**{name: value})


def test_zero_waits_are_allowed_and_whole_float_attempts_are_counted():
    policy = RetryPolicy(max_attempts=3.0, initial_wait=0, max_wait=0, max_retry_after=0)
    assert (policy.max_attempts, policy.backoff(2), policy.wait_after(1, 30.0)) == (3, 0.0, 0.0)


# ---- one wait schedule: when the next poll or retry happens ------------------------------------

SCHEDULE = RetryPolicy(max_wait=300.0, max_retry_after=600.0)


def test_a_poller_waits_one_interval_after_a_good_poll_or_the_longer_poll_hint_up_to_the_cap():
    assert SCHEDULE.next_wait(interval=10.0) == 10.0
    assert SCHEDULE.next_wait(interval=10.0, poll_hint=4.0) == 10.0
    assert SCHEDULE.next_wait(interval=10.0, poll_hint=45.0) == 45.0
    assert SCHEDULE.next_wait(interval=10.0, poll_hint=1e9) == 600.0
    assert SCHEDULE.next_wait(interval=10.0, poll_hint=float("nan")) == 10.0


def test_a_poller_doubles_the_interval_per_failed_poll_up_to_the_cap_and_waits_at_least_the_retry_after():
    assert [SCHEDULE.next_wait(n, interval=10.0) for n in (1, 2, 3, 6, 9)] == [10.0, 20.0, 40.0, 300.0, 300.0]
    assert SCHEDULE.next_wait(1, interval=500.0) == 500.0  # never shorter than the interval itself
    assert SCHEDULE.next_wait(2, interval=10.0, retry_after=90.0) == 90.0
    assert SCHEDULE.next_wait(2, interval=10.0, retry_after=1e9) == 600.0
    assert SCHEDULE.next_wait(2, interval=10.0, poll_hint=90.0) == 20.0  # a poll hint is no backoff


def test_a_poller_adds_at_most_the_jitter_fraction():
    waits = [SCHEDULE.next_wait(interval=10.0, jitter=0.1) for _ in range(200)]
    assert all(10.0 <= wait <= 11.0 for wait in waits) and len(set(waits)) > 1


def test_a_retry_of_one_call_honours_the_retry_after_up_to_the_cap_else_backs_off_with_jitter():
    policy = RetryPolicy(initial_wait=1.0, max_wait=30.0, max_retry_after=300.0)
    assert policy.next_wait(1, retry_after=12.0) == 12.0
    assert policy.next_wait(1, retry_after=1e9) == 300.0
    assert all(4.0 <= policy.next_wait(4) <= 8.0 for _ in range(50))
    assert all(15.0 <= policy.next_wait(9) <= 30.0 for _ in range(50))


def test_the_trigger_keeps_the_one_poll_schedule():
    from airflow_provider_videogen.retry import POLL_SCHEDULE
    from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger

    assert (VideoTaskTrigger.max_backoff, VideoTaskTrigger.max_retry_after) == (
        POLL_SCHEDULE.max_wait,
        POLL_SCHEDULE.max_retry_after,
    )
