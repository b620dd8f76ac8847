"""The cost part of ``GenerateVideoOperator``: the cap checked before the create call, the cost of the finished task.

Prices come from the connection's ``prices`` extra (:class:`~airflow_provider_videogen.cost.Prices`);
an estimate is made from the request before it is submitted, and the finished task carries its cost
(priced from the usage the service reported, else estimated from the request), logged in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.cost import CostUnknown
from airflow_provider_videogen.exceptions import VideoGenerationOverBudgetError, VideoGenError
from airflow_provider_videogen.video_task import VideoTask

if TYPE_CHECKING:
    from airflow_provider_videogen.cost import Prices
    from airflow_provider_videogen.generation_request import VideoGenerationRequest


def refuse_over_budget(
    request: VideoGenerationRequest, max_cost: Decimal, prices: Prices, videogen_conn_id: str, log: Any
) -> None:
    """Raise :class:`VideoGenerationOverBudgetError` when the request's estimate is above ``max_cost``, or unknown.

    :param videogen_conn_id: the connection whose ``prices`` extra priced it, for the message.
    :param log: the operator's log, which says the estimate of a request within the cap.
    """
    cap = f"max_cost={max_cost} {prices.currency or ''}".rstrip()
    try:
        estimate = prices.estimate(request)
    except CostUnknown as error:
        raise VideoGenerationOverBudgetError(
            f"Not submitting: {cap} is set, but the cost of this generation cannot be estimated: {error}. "
            f"Set the price in the prices extra of connection {videogen_conn_id!r}, or drop max_cost."
        ) from None
    if estimate.amount > max_cost:
        raise VideoGenerationOverBudgetError(
            f"Not submitting: the estimated cost, {estimate.to_dict()['amount']} {estimate.currency} "
            f"({estimate.computed}), is above {cap}. Ask for less (a shorter or smaller video) or raise max_cost."
        )
    log.info("Estimated cost %s, within %s: submitting.", estimate, cap)


def with_cost(
    finished: dict[str, Any], request: VideoGenerationRequest | None, model: str, prices: Prices, log: Any
) -> dict[str, Any]:
    """Put the cost on the finished task (estimated from the request where the answer lacks usage); log it.

    :param request: the request that was submitted, if it can still be built (``None``: the cost is
        priced from the answer alone).
    :param model: the operator's model, for an answer that names none.
    """
    if finished.get("cost") is None and prices.prices:
        cost = prices.cost_of(
            VideoTask.from_dict(finished),
            model=request.model if request else model,
            seconds=request.duration if request else None,
        )
        finished["cost"] = cost.to_dict() if cost is not None else None
    cost_data = finished.get("cost")
    if cost_data is not None:
        log.info(
            "Video task %s cost %s %s (%s: %s).",
            finished.get("id"),
            cost_data["amount"],
            cost_data["currency"],
            cost_data["basis"],
            cost_data["computed"],
        )
        return finished
    log.info("Video task %s: its cost is not known (%s).", finished.get("id"), _why_unknown(finished, model, prices))
    return finished


def request_for_cost(build: Callable[[], VideoGenerationRequest]) -> VideoGenerationRequest | None:
    """Build the submitted request again, for the estimate of a finished task's cost; ``None`` where it fails.

    A generation already paid for never fails over its cost: without the request, the cost is
    priced from the answer alone (see :func:`with_cost`).
    """
    try:
        return build()
    except VideoGenError:
        return None


def _why_unknown(finished: dict[str, Any], model: str, prices: Prices) -> str:
    """Say why a finished task has no cost: no prices, no price for its model, or no usage its price counts."""
    model = finished.get("model") or model
    price = prices.price_of(model)
    if not prices.prices:
        return "the connection has no prices extra"
    if price is None:
        return f"no price for model {model!r} in the connection's prices extra"
    return f"the service reported nothing its price counts, {price.describe()}"
