"""``video_download``: the module the download package replaced, kept so that old imports keep working."""

from __future__ import annotations

import importlib

import pytest

from airflow_provider_videogen import download, video_download


@pytest.fixture
def reloaded_afterwards():
    yield
    importlib.reload(video_download)


def test_video_download_hands_on_every_name_the_download_package_exports_as_the_same_object():
    assert set(download.__all__) <= set(video_download.__all__)
    for name in download.__all__:
        assert getattr(video_download, name) is getattr(download, name), name


def test_a_name_added_to_the_download_package_is_handed_on_without_listing_it_again(reloaded_afterwards, monkeypatch):
    # The module is reloaded once the package is restored (fixtures end in the reverse order of these arguments).
    monkeypatch.setattr(download, "__all__", [*download.__all__, "NEWLY_EXPORTED"], raising=True)
    monkeypatch.setattr(download, "NEWLY_EXPORTED", object(), raising=False)
    importlib.reload(video_download)
    assert "NEWLY_EXPORTED" in video_download.__all__
    assert video_download.NEWLY_EXPORTED is download.NEWLY_EXPORTED
