"""The README and the docs site: every API style named where a newcomer looks first; the site builds strictly."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_videogen.styles import STYLES

REPO = Path(__file__).resolve().parent.parent
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


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


def style_sections(page: str) -> dict[str, str]:
    """The text of each ``### `name` `` section of a docs page, by the name in its heading."""
    parts = re.split(r"^### `(\w+)`.*$", page, flags=re.MULTILINE)
    return {
        name: re.split(r"^#{2,3} ", body, flags=re.MULTILINE)[0]
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


@pytest.mark.parametrize("name", list(STYLES))
def test_the_connection_page_has_a_section_per_style_with_its_data_centers_defaults_and_an_example(name):
    sections = style_sections((REPO / "docs" / "connection.md").read_text())
    assert name in sections, f"docs/connection.md has no '### `{name}`' section"
    section, style = sections[name], STYLES[name]
    for center in style.data_centers:
        assert f"`{center.name}`" in section and center.base_url in section, center
    assert f"`{style.default_path_prefix}`" in section if style.default_path_prefix else "no prefix" in section
    assert f"{style.default_poll_interval:g} s" in section
    for option in style.options:
        default = f"`{option.default}`" if option.default else "default empty"
        assert f"`{option.name}`" in section and default in section, option
    example = f'"api_style": "{name}"' if name != next(iter(STYLES)) else '"conn_type": "videogen"'
    assert "AIRFLOW_CONN_" in section and example in section


#: The modules that every style shares: what differs by style is the style's to say (its class, and the docs'
#: style table), so that a new style edits none of them.
SHARED_MODULES = (
    "operators/generate.py",
    "operators/fetch.py",
    "operators/landing_step.py",
    "operators/submit_once.py",
    "operators/reconnect.py",
    "operators/generation_arguments.py",
    "operators/generation_cost.py",
    "operators/worker_wait.py",
    "operators/generation_finish.py",
    "operators/cancel.py",
    "operators/batch_requests.py",
    "operators/batch_window.py",
    "operators/batch_submit.py",
    "operators/batch_landing.py",
    "sensors/videogen.py",
    "triggers/videogen.py",
    "hooks/videogen.py",
    "task_reads.py",
)


def style_words() -> dict[str, str]:
    """How a docstring would name each style: its ``api_style`` value, and that value in words."""
    return {word: name for name in STYLES for word in (name, name.replace("_", " "), name.replace("_", "-"))}


@pytest.mark.parametrize("module", SHARED_MODULES)
def test_the_docstrings_every_style_shares_name_no_style(module):
    tree = ast.parse((REPO / "airflow_provider_videogen" / module).read_text())
    documented = [node for node in ast.walk(tree) if isinstance(node, DOCUMENTED)]
    docstrings = [doc.lower() for node in documented if (doc := ast.get_docstring(node))]
    # As whole words: a style's name may be part of an ordinary word ("fal" in "false", "default").
    named = sorted({word for doc in docstrings for word in style_words() if re.search(rf"\b{re.escape(word)}\b", doc)})
    assert named == [], f"{module} names styles in its docstrings: say it in the style's class or the style table"
