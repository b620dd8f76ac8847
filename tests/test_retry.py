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
