"""A hook's async reads of video tasks: a query of its own, or a poll shared with the event loop's other polls.

Below the hook, beside the client core: a waiting trigger's poll joins the shared polls of its
connection (:mod:`~airflow_provider_videogen.shared_polls`) unless the connection's
``coalesce_polls`` extra is false; any other read is a query of its own, sent by the client. The
share of the shared polls is taken at the first such poll, and given back with the client's share of
the event loop's HTTP session when the hook closes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_videogen.client import PollAnswer, VideoGenClient, query

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.shared_polls import SharedPolls

__all__ = ["TaskReads"]


class TaskReads:
    """The async reads of one hook's video tasks, through its client or its share of the loop's shared polls.

    :param client: the hook's client (its async calls use a share of the event loop's HTTP session).
    """

    def __init__(self, client: VideoGenClient) -> None:
        self.client = client
        self.shared_polls: SharedPolls | None = None

    async def read(self, settings: VideoGenConnectionSettings, video_task_id: str) -> PollAnswer:
        """Read a video task with a query of its own; return it with the service's poll hint."""
        return PollAnswer(*await self.client.asend(query(settings, video_task_id)))

    async def poll(self, settings: VideoGenConnectionSettings, video_task_id: str, gather: float) -> PollAnswer:
        """Poll a video task as a waiting trigger does: in the connection's shared polls, unless it polls alone.

        :param gather: seconds this poll may wait for others to join the request.
        """
        if not settings.coalesce_polls:
            return await self.read(settings, video_task_id)
        if self.shared_polls is None:
            from airflow_provider_videogen.shared_polls import SharedPolls

            self.shared_polls = SharedPolls.join(settings)
        return await self.shared_polls.poll(video_task_id, gather)

    async def close(self) -> None:
        """Give back the share of the shared polls, then the client's share of the event loop's HTTP session."""
        polls, self.shared_polls = self.shared_polls, None
        if polls is not None:
            await polls.leave()
        await self.client.aclose()
