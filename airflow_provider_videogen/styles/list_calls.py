"""The calls of an API style that read many tasks at once, where its service has them.

A batch query reads the tasks of many waits in one call (the shared polls of waiting triggers); the
list of recent generations finds a generation whose create answer was lost, before paying for it
again. A style without either keeps the defaults here: none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = ["ListCalls"]


class ListCalls:
    """What a style says of its list calls: the batch query of many task ids, the list of recent generations.

    A base of :class:`~airflow_provider_videogen.styles.base.ApiStyle`: every style has these through it.
    """

    #: Most task ids one batch query (:meth:`batch_query`) asks about; 0: the style has none, and
    #: waiting triggers share a poll only when they wait on the same task id.
    batch_query_size: ClassVar[int] = 0
    #: Whether the service lists recent generations with enough of their request to recognise one
    #: (:meth:`recent_generations_query`, :meth:`answers_request`): then a try that finds an intent
    #: without an id (a worker killed between the create's answer and the record's write, or a
    #: create whose answer was lost) looks for the generation before paying again. ``False`` by default.
    can_reconcile: ClassVar[bool] = False

    def batch_query(self, video_task_ids: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
        """Return the route (after the prefix) and the query parameters of one call that reads these tasks.

        Only for a style whose :attr:`batch_query_size` is above 0; the ids are already checked.
        """
        raise NotImplementedError

    def batch_answer_tasks(self, answer: Any) -> list[Mapping[str, Any]] | None:
        """Return the task objects of a batch query's answer, or ``None`` if it is not such an answer."""
        raise NotImplementedError

    def recent_generations_query(self, body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        """Return the route (after the prefix) and query parameters of the list call of the newest generations.

        Only for a style that :attr:`can_reconcile`; ``body`` is the create body being looked for.
        """
        raise NotImplementedError

    def recent_generations(self, answer: Any) -> tuple[list[Mapping[str, Any]], bool] | None:
        """Return the list answer's task objects (newest first) and whether older ones follow; ``None``: not a list."""
        raise NotImplementedError

    def recent_generations_next(self, answer: Any) -> str | None:
        """Return the URL of the next (older) list page the answer names, where the style pages so; none by default."""
        return None

    def answers_request(self, item: Mapping[str, Any], body: Mapping[str, Any], *, model: str) -> bool:
        """Whether a listed task object was made by the create body ``body`` (every field it echoes agrees).

        :param model: the request's model, for a style whose body does not hold it (it is in the create's URL).
        """
        raise NotImplementedError
