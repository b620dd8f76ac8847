"""Task id checks shared by the styles: an id is refused before anything is sent if it is not safe in a URL path."""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_videogen._errors import refused

__all__ = ["MAX_VIDEO_TASK_ID_LENGTH", "NIL_UUID", "check_uuid_task_id", "check_video_task_id"]

MAX_VIDEO_TASK_ID_LENGTH = 256

# Characters that could move a request to another path or endpoint, or that no real id contains.
_UNSAFE_ID_CHARACTERS = frozenset("/\\?#%") | {chr(c) for c in range(0x21)} | {"\x7f"}


def check_video_task_id(video_task_id: Any) -> str:
    """Return the id if it is safe to put in a URL path, else raise a clear error.

    Ids with a path separator, ``?``, ``#``, ``%``, white space or control characters, ``.`` or
    ``..``, an empty id or one longer than 256 characters can never be a real video task id and could
    address another endpoint, so they are refused before anything is sent.
    """
    if not isinstance(video_task_id, str):
        raise refused(f"The video task id must be a string, got {type(video_task_id).__name__} ({video_task_id!r}).")
    problem = None
    if not video_task_id:
        problem = "it is empty"
    elif len(video_task_id) > MAX_VIDEO_TASK_ID_LENGTH:
        problem = f"it is {len(video_task_id)} characters long (at most {MAX_VIDEO_TASK_ID_LENGTH})"
    elif video_task_id in (".", ".."):
        problem = "it is a relative path"
    elif bad := sorted(set(video_task_id) & _UNSAFE_ID_CHARACTERS):
        problem = f"it contains {', '.join(repr(c) for c in bad)}"
    if problem:
        shown = video_task_id if len(video_task_id) <= 80 else video_task_id[:77] + "..."
        raise refused(
            f"Invalid video task id {shown!r}: {problem}. Pass the id the create call returned "
            "(like 'cgt-20250331175019-68d9t' or 'task_...'); check the template or XCom that supplies it."
        )
    return video_task_id


_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: A UUID no service hands out: what connection tests of styles with UUID task ids look up.
NIL_UUID = "00000000-0000-0000-0000-000000000000"


def check_uuid_task_id(video_task_id: Any, service: str) -> str:
    """Return the id if it is a UUID (the task ids of ``service``), else raise a clear error."""
    checked = check_video_task_id(video_task_id)
    if not _UUID_RE.fullmatch(checked):
        shown = checked if len(checked) <= 80 else checked[:77] + "..."
        raise refused(
            f"Invalid video task id {shown!r}: {service} task ids are UUIDs like "
            "'0385dc79-5ff8-4d82-bcb6-1d3f2c5e4a7b'. Pass the id this connection's create call returned, "
            "and check that the connection's api_style matches the service that made the task."
        )
    return checked
