"""The README and the docs site: every API style named where a newcomer looks first; the site builds strictly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_videogen.styles import STYLES

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_fits_one_screen_and_names_every_api_style_of_the_registry():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 110
    for name in STYLES:
        assert f"`{name}`" in readme, name


def test_the_docs_home_names_every_api_style_of_the_registry():
    home = (REPO / "docs" / "index.md").read_text()
    for name in STYLES:
        assert f"`{name}`" in home, name


def test_the_docs_site_builds_in_strict_mode(tmp_path):
    if shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
