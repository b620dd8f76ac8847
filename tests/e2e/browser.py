"""A headless Chromium for the browser suite: Debian's ``chromium`` and ``chromium-driver``, driven by Selenium.

Nothing is downloaded but Debian packages: when the browser is missing and the tests run as root on a
machine with ``apt-get`` (as CI does), it is installed from there; elsewhere the suite is skipped,
saying how to get it. In CI (``CI`` set) a browser that cannot be had fails the suite instead.
Screenshots go to ``$VIDEOGEN_TEST_ARTIFACTS/browser`` (default ``.test-artifacts/browser`` in the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMIUM_PACKAGES = ("chromium", "chromium-driver")
ARTIFACTS = Path(os.environ.get("VIDEOGEN_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / ".test-artifacts"))
SCREENSHOTS = ARTIFACTS / "browser"


def _binaries() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _apt_install() -> str | None:
    """Install Chromium from Debian's packages; return why not, or ``None`` when it worked."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not running as root"
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *CHROMIUM_PACKAGES]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    return None


def chromium() -> tuple[str, str]:
    """Return the paths of Chromium and its driver, installing them from Debian if need be; else skip (fail in CI)."""
    found = _binaries()
    problem = None
    if found is None:
        problem = _apt_install()
        found = _binaries()
    if found is not None:
        return found
    reason = (
        f"No Chromium for the browser suite ({problem or 'the Debian packages installed no binaries'}): "
        f"install the Debian packages {' and '.join(CHROMIUM_PACKAGES)} (apt-get install -y "
        f"{' '.join(CHROMIUM_PACKAGES)}), or run the tests as root on Debian, which installs them."
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def start_browser() -> Any:
    """A headless Chromium under Selenium, pointed at the Debian binaries (Selenium downloads nothing)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


def screenshot(driver: Any, name: str) -> Path:
    """Save the page as ``<artifacts>/browser/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def click(driver: Any, element: Any, timeout: float = 20.0) -> None:
    """Click ``element`` as a person would, once nothing lies over it (a toast still fading in or out)."""
    from selenium.common.exceptions import ElementClickInterceptedException

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)

    def clicked(_driver: Any) -> bool:
        try:
            element.click()
        except ElementClickInterceptedException:
            return False
        return True

    until(driver, clicked, timeout, message="a click that nothing lies over")


def until(driver: Any, condition: Callable[[Any], T], timeout: float = 20.0, message: str = "") -> T:
    """Wait until ``condition(driver)`` is truthy; return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message)  # type: ignore[no-any-return]
