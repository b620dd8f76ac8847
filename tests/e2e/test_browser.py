"""The provider in Airflow's UI, in a real headless Chromium against the e2e deployment's api-server.

The connection form, a connection made through it and its Test button, a task page's extra links and
the human-review page; each page is saved as a screenshot (see :mod:`tests.e2e.browser`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_videogen import API_STYLE_LABELS, DATA_CENTER_LABELS
from airflow_provider_videogen.testing import SimulatorProcess

from .browser import click, screenshot, start_browser, until
from .deployment import AirflowDeployment
from .simulator_service import API_KEY
from .test_review_deployed import REVIEW, answer, waiting_review
from .videos import new_folder

pytestmark = pytest.mark.e2e

AIRFLOW = Version(airflow_version)
GATEWAY_EXAMPLE = "videogen_gateway_generate_and_fetch"
QUICK = "[sim:queued=0.2] [sim:running=0.3]"


@pytest.fixture(scope="module")
def browser(_e2e_deployment: AirflowDeployment) -> Iterator[Any]:
    driver = start_browser()
    driver.implicitly_wait(10)
    try:
        # The first visit signs in (every user is admin here) and lands on the home page: only then do
        # other pages open directly.
        driver.get(_e2e_deployment.base_url)
        until(driver, lambda d: "Dags" in d.find_element(by("TAG_NAME"), "body").text, 60, "the UI's home page")
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def runs(_e2e_deployment: AirflowDeployment) -> dict[str, str]:
    """Runs the page tests look at, started together at once so that they render while the form tests run."""
    airflow = _e2e_deployment
    airflow.wait_for_dag(GATEWAY_EXAMPLE)
    airflow.wait_for_dag(REVIEW)
    return {
        "gateway": airflow.trigger_dag(
            GATEWAY_EXAMPLE,
            {"prompt": f"Waves on a pier {QUICK}", "destination": f"file://{new_folder(airflow, 'browser-gw')}/"},
        ),
        "review": airflow.trigger_dag(
            REVIEW,
            {
                "prompt": f"A red kite over a hill {QUICK}",
                "destination": f"file://{new_folder(airflow, 'browser-rv')}/",
            },
        ),
    }


def by(kind: str) -> Any:
    from selenium.webdriver.common.by import By

    return getattr(By, kind)


def open_videogen_form(browser: Any, airflow: AirflowDeployment, conn_id: str) -> Any:
    """Open Admin -> Connections -> Add Connection with type VideoGen; return the dialog."""
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{airflow.base_url}/connections")
    # The first page of a fresh api-server can take a while to load.
    add = until(browser, lambda d: d.find_element(by("XPATH"), "//button[normalize-space()='Add Connection']"), 60)
    click(browser, add)
    dialog = browser.find_element(by("CSS_SELECTOR"), "[role=dialog]")
    dialog.find_element(by("NAME"), "connection_id").send_keys(conn_id)
    kind = dialog.find_element(by("CSS_SELECTOR"), "input[role=combobox]")
    kind.send_keys("VideoGen")
    until(browser, lambda d: d.find_elements(by("CSS_SELECTOR"), "[id*='-option-']"))
    kind.send_keys(Keys.ENTER)
    until(browser, lambda d: dialog.find_elements(by("NAME"), "password"), message="the VideoGen fields")
    return dialog


def labels(dialog: Any) -> set[str]:
    return {label.text.replace("*", "").strip() for label in dialog.find_elements(by("TAG_NAME"), "label")}


def dropdown_choices(browser: Any, dialog: Any, label: str) -> list[str]:
    """The choices a dropdown of the form offers (opened with the keyboard, closed by keeping its value)."""
    from selenium.webdriver.common.keys import Keys

    field = dialog.find_element(
        by("XPATH"), f".//label[normalize-space()='{label}']/ancestor::div[@role='group'][1]//input[@role='combobox']"
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", field)
    field.send_keys(Keys.ARROW_DOWN)
    options = until(browser, lambda d: d.find_elements(by("CSS_SELECTOR"), "[id*='-option-']"))
    choices = [option.text for option in options]
    field.send_keys(Keys.ENTER)  # keeps the highlighted (current) value; Escape would close the dialog
    return choices


def expand(browser: Any, dialog: Any, section: str) -> None:
    button = dialog.find_element(by("XPATH"), f".//button[normalize-space()='{section}']")
    click(browser, button)


def test_the_connection_form_relabels_the_key_offers_the_dropdowns_and_hides_unused_fields(
    browser: Any, airflow: AirflowDeployment
) -> None:
    dialog = open_videogen_form(browser, airflow, f"vg_form_{uuid.uuid4().hex[:6]}")
    shown = labels(dialog)
    assert {"API key", "Base URL (optional)"} <= shown
    assert not {"Login", "Port", "Schema", "Password", "Host"} & shown
    expand(browser, dialog, "Extra Fields")
    if Version("3.2") <= AIRFLOW:
        assert dropdown_choices(browser, dialog, "Data center") == list(DATA_CENTER_LABELS.values())
        assert "Beijing (ai.rong-api.com)" in DATA_CENTER_LABELS.values()
        assert dropdown_choices(browser, dialog, "API style") == list(API_STYLE_LABELS.values())
        assert "Contents generations (RongCloud, Volcengine Ark, BytePlus)" in API_STYLE_LABELS.values()
    else:
        # Airflow 3.1 builds the extra fields from widgets: text fields whose short help links to the docs'
        # table of every style's choices (a value that is not one of them is refused, naming them, on save).
        assert {"Data center", "API style"} <= labels(dialog)
        assert "connection.md#data-centers" in dialog.text or "connection/#data-centers" in dialog.text
        assert "connection.md#api-styles" in dialog.text or "connection/#api-styles" in dialog.text
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "connection-form")


def create_connection(browser: Any, airflow: AirflowDeployment, sim: SimulatorProcess, api_key: str) -> str:
    conn_id = f"vg_browser_{uuid.uuid4().hex[:8]}"
    dialog = open_videogen_form(browser, airflow, conn_id)
    dialog.find_element(by("NAME"), "host").send_keys(sim.base_url)
    dialog.find_element(by("NAME"), "password").send_keys(api_key)
    save = dialog.find_element(by("XPATH"), ".//button[normalize-space()='Save']")
    click(browser, save)
    until(browser, lambda d: d.find_elements(by("XPATH"), f"//td[normalize-space()='{conn_id}']"))
    return conn_id


def press_test(browser: Any, conn_id: str) -> str:
    """Press the Test button of a connection in the list; return what the UI says then (a new toast)."""
    toasts = "[data-scope=toast][data-part=root]"
    before = {toast.id for toast in browser.find_elements(by("CSS_SELECTOR"), toasts)}
    row = browser.find_element(by("XPATH"), f"//tr[td[normalize-space()='{conn_id}']]")
    click(browser, row.find_element(by("CSS_SELECTOR"), "button[aria-label='Test Connection']"))

    def said(driver: Any) -> str | None:
        for toast in driver.find_elements(by("CSS_SELECTOR"), toasts):
            # Its title comes a moment before its description (the outcome): wait for both.
            text = str(toast.text)
            if toast.id not in before and "Test" in text and "\n" in text.strip():
                return text
        return None

    return until(browser, said, message="the result of the connection test")


def test_a_connection_made_in_the_form_passes_its_test_and_a_wrong_key_is_named(
    browser: Any, airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    good = create_connection(browser, airflow, sim, API_KEY)
    wrong = create_connection(browser, airflow, sim, "not-the-key-0000")
    said_good = press_test(browser, good)
    screenshot(browser, "connection-test-ok")
    if Version("3.3.2") == AIRFLOW and "Bad Request" in said_good:
        # The UI sends port 0 for a connection saved without one, and the api-server refuses to test that
        # "other endpoint" (apache/airflow#73298, fixed upstream); the VideoGen form hides the port.
        pytest.xfail("Airflow 3.3.2 refuses to test a saved connection without a port (apache/airflow#73298)")
    said_wrong = press_test(browser, wrong)
    screenshot(browser, "connection-test-wrong-key")
    assert (
        "Test Connection Successful" in said_good and f"Connected to {sim.base_url} (contents_generations)" in said_good
    )
    assert f"The service at {sim.base_url} refused the API key (HTTP 401)" in said_wrong, said_wrong
    assert "not-the-key-0000" not in said_wrong


def test_the_task_page_shows_the_service_console_link(
    browser: Any, airflow: AirflowDeployment, sim: SimulatorProcess, runs: dict[str, str]
) -> None:
    run_id = runs["gateway"]
    assert airflow.wait_for_run(GATEWAY_EXAMPLE, run_id)["state"] == "success"
    browser.get(f"{airflow.base_url}/dags/{GATEWAY_EXAMPLE}/runs/{quote(run_id)}/tasks/generate/details")
    link = until(
        browser,
        lambda d: next(iter(d.find_elements(by("XPATH"), "//a[normalize-space()='Video service console']")), None),
        message="the extra link",
    )
    assert link.get_attribute("href") == f"{sim.base_url}/console/task"
    screenshot(browser, "task-extra-links")


def test_the_review_page_shows_the_video_details(
    browser: Any, airflow: AirflowDeployment, runs: dict[str, str]
) -> None:
    run_id = runs["review"]
    waiting_review(airflow, run_id, "review")
    landed = airflow.xcom(REVIEW, run_id, "fetch")
    browser.get(f"{airflow.base_url}/dags/{REVIEW}/runs/{quote(run_id)}/tasks/review/required_actions")
    until(browser, lambda d: "Last frame" in d.find_element(by("TAG_NAME"), "body").text, message="the review form")
    page = browser.find_element(by("TAG_NAME"), "body").text
    for shown in ("A red kite over a hill", "doubao-seedance-1-0-pro-250528", landed["last_frame_path"], "Regenerate"):
        assert shown in page
    screenshot(browser, "review-page")
    answer(airflow, run_id, "review", "Reject")
    assert airflow.wait_for_run(REVIEW, run_id)["state"] == "success"
