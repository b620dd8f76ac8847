"""``make demo``'s script: the folder it owns, and the provider's steps it shows while the DAG runs."""

from __future__ import annotations

from scripts import airflow_distributed, airflow_local, demo
from scripts.demo import demo_folder, provider_step

CREATED = (
    "2026-12-07T02:45:45.374217Z [info     ] Created video task cgt-20261207024545-f2t76 at http://127.0.0.1:33285 "
    "with model doubao-seedance-1-0-pro-250528. [airflow.task.hooks.airflow_provider_videogen.hooks.videogen."
    "VideoGenHook] loc=videogen.py:261"
)
DEFERRED = (
    "2026-12-07T02:45:45.403021Z [info     ] Pausing task as DEFERRED.      [task] dag_id=videogen_generate_and_fetch "
    "loc=task_runner.py:1466"
)
SUCCEEDED = (
    "2026-12-07T02:45:56.139280Z [info     ] Video task cgt-20261207024545-f2t76 succeeded. "
    "[airflow_provider_videogen.triggers.videogen.VideoTaskTrigger] loc=videogen.py:171"
)
STORED = (
    "2026-12-07T02:45:57.521888Z [info     ] Landed file:///tmp/v/cgt-1.mp4 (the video of video task cgt-1, "
    "3,000,000 bytes, sha256 1c18). [airflow.task.airflow_provider_videogen.video_download] loc=downloader.py:228"
)
CHATTER = (
    "2026-12-07T02:45:45.274576Z [info     ] Task instance state updated    "
    "[airflow.api_fastapi.execution_api.routes.task_instances] rows_affected=1"
)
FOLDER_OF_THE_DEMO = "demo"
WARNING = "2026-12-07T02:45:45.274576Z [warning  ] Something is off [airflow.models.dagbag] loc=dagbag.py:1"


def test_the_demo_empties_only_its_own_folder_and_leaves_the_other_launchers_homes_alone(tmp_path):
    local_home = tmp_path / "airflow-local"
    local_home.mkdir()
    (local_home / "airflow.db").write_text("the connections a user saved")
    (tmp_path / FOLDER_OF_THE_DEMO).mkdir()
    (tmp_path / FOLDER_OF_THE_DEMO / "old.mp4").write_text("last run")

    folder = demo_folder(tmp_path)

    assert (local_home / "airflow.db").read_text() == "the connections a user saved"
    assert folder == tmp_path / FOLDER_OF_THE_DEMO and list(folder.iterdir()) == []


def test_each_launcher_has_its_own_folder_and_none_holds_another():
    homes = [demo.WORKSPACES / demo.FOLDER, airflow_local.HOME, airflow_distributed.HOME]
    assert len(set(homes)) == 3
    for home in homes:
        assert home.parent == demo.WORKSPACES
        assert not any(other != home and other.is_relative_to(home) for other in homes)


def test_the_provider_steps_are_shown_and_airflows_own_chatter_is_not():
    assert provider_step(CREATED) == (
        "submitted Created video task cgt-20261207024545-f2t76 at http://127.0.0.1:33285 "
        "with model doubao-seedance-1-0-pro-250528."
    )
    assert provider_step(DEFERRED).startswith("deferred  ")
    assert provider_step(SUCCEEDED) == "finished  Video task cgt-20261207024545-f2t76 succeeded."
    assert provider_step(STORED).startswith("landed    Landed file:///tmp/v/cgt-1.mp4 (the video of video task cgt-1")
    assert provider_step(CHATTER) is None
    assert provider_step("not a log line") is None


def test_warnings_of_any_logger_are_shown():
    assert provider_step(WARNING) == "warning   Something is off [airflow.models.dagbag]"
