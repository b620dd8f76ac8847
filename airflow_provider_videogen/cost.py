"""What a generation costs: the user's prices (the connection's ``prices`` extra), a cost, and an estimate.

Prices are the user's, never shipped here: services change them, and a gateway or reseller charges
its own. A connection's ``prices`` maps a model, or a glob of models, to one price::

    {"doubao-seedance-1-0-pro-*": {"per_million_tokens": 2.5, "currency": "USD"},
     "veo-3.0-generate-001": {"per_second": 0.4, "currency": "USD"},
     "*": {"per_video": 0.5, "currency": "USD"}}

A model's price is the key equal to its name, else the most specific glob that matches it (the one
with the most characters that are not wildcards; between equals, the first listed).

Amounts are :class:`~decimal.Decimal`: money in binary floats does not add up (``0.1 + 0.2`` is not
``0.3``), and a sum of many small charges compared with a cap must not be off by a rounding error.
In JSON (XCom, asset events, lineage) an amount is a decimal string (``"0.25"``), read back exactly
with ``Decimal(cost["amount"])``.

This module must not import Airflow: the video task, which carries a cost, is read while Airflow
itself is still being imported.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from airflow_provider_videogen._errors import refused

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

__all__ = ["BASES", "UNITS", "Basis", "Cost", "CostUnknown", "FinishedGeneration", "Price", "Prices"]

Basis = Literal["reported", "priced", "estimated"]
#: How a cost was found: the service said what it charged; usage it reported times the user's
#: price; or the user's price applied to the request (before it ran, or where the service reports
#: no usage).
BASES: Final[tuple[Basis, ...]] = ("reported", "priced", "estimated")

#: What a price can be per, as the ``prices`` extra names it.
UNITS: Final = ("per_second", "per_million_tokens", "per_video")

_CURRENCY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,15}")
_WILDCARDS = frozenset("*?[]")
_MILLION = Decimal(1_000_000)
#: Frames per second assumed for a token estimate when the request sets none (Seedance renders 24).
_DEFAULT_FPS = 24
#: Height in pixels of a resolution label (the short side for a portrait ratio).
_RESOLUTION_HEIGHTS: Final = {"480p": 480, "720p": 720, "1080p": 1080}


@dataclass(frozen=True)
class Cost:
    """What one generation cost, or is estimated to cost.

    :param amount: the amount, exact (a :class:`~decimal.Decimal`).
    :param currency: the currency (or unit, such as credits) of the price it came from.
    :param basis: ``reported``, ``priced`` or ``estimated`` (see :data:`BASES`).
    :param computed: how it was found, in words (``5 s x 0.05 USD per second, price 'wan*'``).
    """

    amount: Decimal
    currency: str
    basis: Basis
    computed: str = ""

    def to_dict(self) -> dict[str, str]:
        """Return JSON-safe data: ``amount`` as a decimal string, ``currency``, ``basis``, ``computed``."""
        return {
            "amount": _plain(self.amount),
            "currency": self.currency,
            "basis": self.basis,
            "computed": self.computed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cost:
        """Rebuild a cost from :meth:`to_dict` output."""
        basis = data.get("basis")
        if basis not in BASES:
            raise ValueError(f"a cost's basis must be one of {', '.join(BASES)}, got {basis!r}")
        return cls(Decimal(str(data["amount"])), str(data["currency"]), basis, str(data.get("computed") or ""))

    def __str__(self) -> str:
        return f"{_plain(self.amount)} {self.currency} ({self.basis}: {self.computed})"


class FinishedGeneration(Protocol):
    """What pricing reads of a finished task (a :class:`~airflow_provider_videogen.video_task.VideoTask`)."""

    @property
    def model(self) -> str | None:
        """The model that ran it, where the answer names it."""

    @property
    def usage(self) -> Mapping[str, Any]:
        """The usage the service reported (tokens)."""

    @property
    def duration(self) -> float | None:
        """The video's seconds, where the answer says."""


class CostUnknown(ValueError):
    """No cost can be computed; the message says why and what to set."""


@dataclass(frozen=True)
class Price:
    """The user's price of one model (or glob of models): one amount per unit, in a currency.

    :param model: the key of the ``prices`` extra it came from (a model name or a glob).
    :param unit: ``per_second``, ``per_million_tokens`` or ``per_video``.
    :param amount: the amount per unit.
    :param currency: e.g. ``USD``, ``CNY``, or ``credits``.
    """

    model: str
    unit: str
    amount: Decimal
    currency: str

    def describe(self) -> str:
        """Describe the price in words, e.g. ``0.05 USD per second (price 'wan*')``."""
        per = self.unit.removeprefix("per_").replace("_", " ")
        return f"{_plain(self.amount)} {self.currency} per {per} (price {self.model!r})"


@dataclass(frozen=True)
class Prices:
    """A connection's prices (its ``prices`` extra), checked; empty when it sets none.

    :param prices: the prices in the order the extra lists them.
    """

    prices: tuple[Price, ...] = ()

    @classmethod
    def parse(cls, conn_id: str, value: Any) -> Prices:
        """Read and check the ``prices`` extra (a mapping, or its JSON text); a bad entry is refused by name."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return cls()
        where = f"Connection {conn_id!r} has a prices extra"
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise refused(f"{where} that is not valid JSON; write it as {_EXAMPLE}.") from None
        if not isinstance(value, Mapping):
            raise refused(
                f"{where} that is {type(value).__name__}, not a mapping of models to prices; write it as {_EXAMPLE}."
            )
        prices = tuple(_price(where, model, entry) for model, entry in value.items())
        currencies = sorted({price.currency for price in prices})
        if len(currencies) > 1:
            raise refused(
                f"{where} in more than one currency ({', '.join(currencies)}): a connection's costs and its "
                "max_cost are in one currency; use one connection per currency."
            )
        return cls(prices)

    @property
    def currency(self) -> str | None:
        """The one currency of these prices (``None`` without prices)."""
        return self.prices[0].currency if self.prices else None

    def price_of(self, model: str | None) -> Price | None:
        """Return the price of ``model``: its own key, else the most specific glob that matches (or ``None``)."""
        if not model:
            return None
        globs = []
        for position, price in enumerate(self.prices):
            if price.model == model:
                return price
            if _WILDCARDS & set(price.model) and fnmatchcase(model, price.model):
                literal = sum(1 for character in price.model if character not in _WILDCARDS)
                globs.append((-literal, position, price))
        return min(globs, key=lambda found: found[:2])[2] if globs else None

    def cost_of(
        self, task: FinishedGeneration, *, model: str | None = None, seconds: float | None = None
    ) -> Cost | None:
        """Return the cost of a succeeded generation, priced from what the service reported; ``None`` if unknown.

        :param task: the finished task (its ``usage``, ``duration`` and ``model``).
        :param model: the model asked for, where the answer does not name it.
        :param seconds: the length asked for, where the answer does not say it: the cost is then
            ``estimated`` (the service did not report the seconds it charged).
        """
        price = self.price_of(task.model or model)
        if price is None:
            return None
        if price.unit == "per_video":
            # A succeeded task is one video, as the service reported it.
            return Cost(price.amount, price.currency, "priced", f"1 video x {price.describe()}")
        if price.unit == "per_million_tokens":
            tokens = _reported_tokens(task.usage)
            if tokens is None:
                return None
            amount = Decimal(tokens) * price.amount / _MILLION
            return Cost(amount, price.currency, "priced", f"{tokens} tokens reported x {price.describe()}")
        if task.duration is not None and task.duration > 0:
            reported = Decimal(str(task.duration))
            return Cost(
                reported * price.amount, price.currency, "priced", f"{_plain(reported)} s reported x {price.describe()}"
            )
        if seconds is not None and seconds > 0:
            asked = Decimal(str(seconds))
            return Cost(
                asked * price.amount, price.currency, "estimated", f"{_plain(asked)} s asked x {price.describe()}"
            )
        return None

    def estimate(self, request: VideoGenerationRequest) -> Cost:
        """Estimate the cost of ``request`` before it runs, from its fields and the model's price.

        :raises CostUnknown: no price for the model, or the request does not say enough for its unit
            (the message says what to set).
        """
        price = self.price_of(request.model)
        if price is None:
            listed = ", ".join(repr(p.model) for p in self.prices) or "none"
            raise CostUnknown(
                f"the connection's prices extra has no price for model {request.model!r} (prices for: {listed}); "
                "add the model, or a glob that matches it"
            )
        if price.unit == "per_video":
            return Cost(price.amount, price.currency, "estimated", f"1 video x {price.describe()}")
        seconds = _requested_seconds(request)
        if seconds is None:
            raise CostUnknown(
                f"the request gives no length for a price {price.unit.replace('_', ' ')} ({price.describe()}); "
                "set generation_params duration (or frames and fps)"
            )
        if price.unit == "per_second":
            return Cost(
                seconds * price.amount, price.currency, "estimated", f"{_plain(seconds)} s x {price.describe()}"
            )
        return _token_estimate(request, price, seconds)


_EXAMPLE = '{"<model or glob>": {"per_second": 0.05, "currency": "USD"}}'


def _price(where: str, model: Any, entry: Any) -> Price:
    """Check one entry of the ``prices`` extra; the error names its model key and the field at fault."""
    if not isinstance(model, str) or not model.strip():
        raise refused(f"{where} with an empty model key; name a model or a glob such as 'seedance-*'.")
    at = f"{where} whose entry {model!r}"
    if not isinstance(entry, Mapping):
        raise refused(f"{at} is {type(entry).__name__}, not a mapping; write it as {_EXAMPLE}.")
    unknown = sorted(set(entry) - {*UNITS, "currency"})
    if unknown:
        raise refused(
            f"{at} has unknown field(s) {', '.join(map(repr, unknown))}; use one of {', '.join(UNITS)} and currency."
        )
    units = [unit for unit in UNITS if entry.get(unit) is not None]
    if len(units) != 1:
        got = ", ".join(units) or "none"
        raise refused(f"{at} must set exactly one of {', '.join(UNITS)} (it sets {got}).")
    unit = units[0]
    currency = entry.get("currency")
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency.strip()):
        raise refused(f"{at} has currency={currency!r}; set currency to a code such as 'USD', 'CNY' or 'credits'.")
    return Price(model, unit, _amount(f"{at} has {unit}", entry[unit]), currency.strip())


def _amount(at: str, value: Any) -> Decimal:
    """Read an amount of money: a number (or its text) that is finite and not negative."""
    problem = None
    amount = Decimal(0)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        problem = f"a {type(value).__name__}"
    else:
        try:
            # Through str: Decimal(0.1) would keep the binary float's error (0.1000000000000000055...).
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            problem = "not a number"
        else:
            if not amount.is_finite():
                problem = "not finite"
            elif amount < 0:
                problem = "negative"
    if problem:
        raise refused(f"{at}={value!r}, which is {problem}; write the amount as a number such as 0.05.")
    return amount


def _token_estimate(request: VideoGenerationRequest, price: Price, seconds: Decimal) -> Cost:
    """Estimate a request's cost under a price per million tokens, from the size and length it asks for.

    :raises CostUnknown: the request gives no size (the message says what to set).
    """
    size = _requested_size(request)
    if size is None:
        raise CostUnknown(
            f"the request gives no size for a price per million tokens ({price.describe()}); set "
            "generation_params resolution (480p, 720p, 1080p) and ratio, or width and height"
        )
    width, height = size
    fps = request.fps or _DEFAULT_FPS
    # Seedance counts a video's tokens as width x height x frames / 1024.
    tokens = int(width * height * seconds * fps / 1024)
    amount = Decimal(tokens) * price.amount / _MILLION
    return Cost(
        amount,
        price.currency,
        "estimated",
        f"about {tokens} tokens ({width}x{height}, {_plain(seconds)} s at {fps} fps, /1024) x {price.describe()}",
    )


def _reported_tokens(usage: Mapping[str, Any]) -> int | None:
    """Return the tokens a service reported: Seedance's ``completion_tokens`` (charged), else ``total_tokens``."""
    for key in ("completion_tokens", "total_tokens"):
        value = usage.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return int(value)
    return None


def _requested_seconds(request: VideoGenerationRequest) -> Decimal | None:
    if request.duration is not None:
        return Decimal(str(request.duration))
    if request.frames is not None:
        return Decimal(request.frames) / Decimal(request.fps or _DEFAULT_FPS)
    return None


def _requested_size(request: VideoGenerationRequest) -> tuple[int, int] | None:
    """Width and height asked for: given, or from a resolution label and a ratio (16:9 without one)."""
    if request.width and request.height:
        return request.width, request.height
    short = _RESOLUTION_HEIGHTS.get((request.resolution or "").strip().lower())
    if short is None:
        return None
    ratio = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", request.ratio or "16:9")
    wide, tall = (int(ratio.group(1)), int(ratio.group(2))) if ratio else (16, 9)
    if not wide or not tall:
        wide, tall = 16, 9
    if wide >= tall:
        return round(short * wide / tall), short
    return short, round(short * tall / wide)


def _plain(amount: Decimal) -> str:
    """Write an amount without an exponent (``0.00025``, not ``2.5E-4``), trailing zeros dropped."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
