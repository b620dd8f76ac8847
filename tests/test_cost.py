"""Costs: the user's prices, which price a model gets, a finished generation's cost and a request's estimate."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from airflow_provider_videogen.cost import Cost, CostUnknown, Prices
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus


def prices(**entries: dict) -> Prices:
    return Prices.parse("vg", entries)


def succeeded(**fields) -> VideoTask:
    return VideoTask(id="cgt-1", status=VideoTaskStatus.SUCCEEDED, **fields)


def test_a_model_gets_its_own_price_before_any_glob():
    table = Prices.parse(
        "vg",
        {
            "*": {"per_video": 1, "currency": "USD"},
            "seedance-pro": {"per_video": 3, "currency": "USD"},
            "seedance-*": {"per_video": 2, "currency": "USD"},
        },
    )
    assert table.price_of("seedance-pro").amount == 3


def test_the_most_specific_glob_wins_and_the_first_listed_among_equals():
    table = Prices.parse(
        "vg",
        {
            "*": {"per_video": 1, "currency": "USD"},
            "seedance-*": {"per_video": 2, "currency": "USD"},
            "seedance-1-*": {"per_video": 3, "currency": "USD"},
            "seedance-1-lit*": {"per_video": 5, "currency": "USD"},
            "seedance-?-lite": {"per_video": 4, "currency": "USD"},
        },
    )
    assert table.price_of("seedance-1-pro").amount == 3
    assert table.price_of("seedance-2-pro").amount == 2
    assert table.price_of("veo-3").amount == 1
    # "seedance-1-lit*" and "seedance-?-lite" both match with 14 literal characters: the first listed wins.
    assert table.price_of("seedance-1-lite").amount == 5
    assert prices().price_of("anything") is None


def test_amounts_are_exact_decimals_and_json_carries_them_as_decimal_strings():
    table = Prices.parse("vg", '{"m": {"per_second": 0.1, "currency": "USD"}}')  # JSON text, as the form sends it
    cost = table.cost_of(succeeded(model="m", duration=3))
    assert cost == Cost(Decimal("0.3"), "USD", "priced", cost.computed)  # not 0.30000000000000004
    data = json.loads(json.dumps(cost.to_dict()))
    assert data["amount"] == "0.3" and data["basis"] == "priced" and data["currency"] == "USD"
    assert Cost.from_dict(data) == cost


def test_a_succeeded_generation_is_priced_by_the_tokens_the_service_reported():
    table = prices(**{"seedance-*": {"per_million_tokens": "2.5", "currency": "USD"}})
    cost = table.cost_of(succeeded(model="seedance-pro", usage={"completion_tokens": 108900, "total_tokens": 108900}))
    assert (cost.amount, cost.basis) == (Decimal("0.27225"), "priced")
    assert "108900 tokens reported" in cost.computed


def test_seconds_the_service_did_not_report_make_the_cost_an_estimate():
    table = prices(m={"per_second": "0.05", "currency": "USD"})
    assert table.cost_of(succeeded(model="m")) is None
    cost = table.cost_of(succeeded(), model="m", seconds=8)
    assert (cost.amount, cost.basis) == (Decimal("0.40"), "estimated")
    assert "8 s asked" in cost.computed


def test_only_a_succeeded_generation_gets_a_cost():
    table = prices(m={"per_video": 1, "currency": "USD"})
    failed = VideoTask(id="cgt-1", status=VideoTaskStatus.FAILED, model="m")
    assert failed.with_cost(table).cost is None
    assert succeeded(model="m").with_cost(table).cost.amount == 1


@pytest.mark.parametrize(
    ("entry", "request_fields", "amount", "how"),
    [
        ({"per_video": "0.5"}, {}, Decimal("0.5"), "1 video"),
        ({"per_second": "0.05"}, {"duration": 5}, Decimal("0.25"), "5 s"),
        ({"per_second": "0.05"}, {"frames": 48, "fps": 24}, Decimal("0.10"), "2 s"),
        # 1280 x 720 x 5 s x 24 fps / 1024 = 108000 tokens
        ({"per_million_tokens": "2.5"}, {"duration": 5, "resolution": "720p"}, Decimal("0.27"), "about 108000 tokens"),
        (
            {"per_million_tokens": "2.5"},
            {"duration": 5, "resolution": "720p", "ratio": "9:16"},
            Decimal("0.27"),
            "720x1280",
        ),
    ],
)
def test_a_request_is_estimated_from_its_fields_and_the_models_price(entry, request_fields, amount, how):
    table = prices(m={**entry, "currency": "USD"})
    estimate = table.estimate(VideoGenerationRequest(model="m", prompt="a fox", **request_fields))
    assert (estimate.amount, estimate.basis) == (amount, "estimated")
    assert how in estimate.computed


@pytest.mark.parametrize(
    ("entry", "request_fields", "reason"),
    [
        (None, {"duration": 5}, "no price for model 'm'"),
        ({"per_second": 1}, {}, "set generation_params duration"),
        ({"per_million_tokens": 1}, {"duration": 5}, "set generation_params resolution"),
    ],
)
def test_a_request_that_cannot_be_estimated_says_what_to_set(entry, request_fields, reason):
    table = prices(**({"m": {**entry, "currency": "USD"}} if entry else {"other": {"per_video": 1, "currency": "USD"}}))
    with pytest.raises(CostUnknown, match=reason):
        table.estimate(VideoGenerationRequest(model="m", prompt="a fox", **request_fields))
