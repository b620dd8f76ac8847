"""Each API style reads its own status spellings; one style's word is not another's."""

from __future__ import annotations

import pytest

from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.video_task import VideoTaskStatus


def test_styles_agree_where_their_spellings_overlap():
    meaning: dict[str, VideoTaskStatus] = {}
    for style in STYLES.values():
        assert style.statuses, f"{style.name} names no statuses"
        for spelling, status in style.statuses.items():
            assert spelling == spelling.lower()
            assert meaning.setdefault(spelling, status) is status, f"{style.name} reads {spelling!r} otherwise"


@pytest.mark.parametrize(
    ("style", "spelling", "status"),
    [
        ("contents_generations", "succeeded", VideoTaskStatus.SUCCEEDED),
        ("contents_generations", "completed", VideoTaskStatus.UNKNOWN),  # not a word of that API
        ("contents_generations", "SUCCESS", VideoTaskStatus.UNKNOWN),
        ("video_generations", "SUCCESS", VideoTaskStatus.SUCCEEDED),
        ("video_generations", "NOT_START", VideoTaskStatus.QUEUED),
        ("openai_videos", "completed", VideoTaskStatus.SUCCEEDED),
        ("openai_videos", "succeeded", VideoTaskStatus.UNKNOWN),
    ],
)
def test_a_style_reads_only_its_own_spellings(style, spelling, status):
    payload = {"id": "cgt-1", "task_id": "task_1", "status": spelling}
    assert STYLES[style].parse_task(payload, "x").status is status


def test_every_style_reads_its_status_words_in_any_case():
    for style in STYLES.values():
        for spelling, status in style.statuses.items():
            for variant in (spelling.upper(), spelling.title(), f" {spelling} "):
                assert VideoTaskStatus.from_api(variant, style.statuses) is status, f"{style.name}: {variant!r}"
        # Compared in lower case, like the statuses: the service's own case is not to be relied on.
        assert all(word == word.lower() for word in style.missing_task_statuses), style.name
