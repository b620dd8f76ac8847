"""Shared fixtures: a throwaway Airflow home, and the shipped plugin's simulator and connections."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.loopback import API_KEY

# Airflow reads its home when first imported: point it at a throwaway folder before any test imports it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="videogen-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(AIRFLOW_HOME / "dags")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# Every real deployment has a fernet key, and with one Airflow encrypts Variables and connections: the
# suites must meet what encryption breaks (Airflow 3.1 with cryptography 51 could write neither). A key
# made per run, so that nothing encrypted outlives it; subprocesses (the CLI, the e2e services) inherit it.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
# gcsfs first asks GCS's gRPC control plane what kind of bucket it reads (hierarchical or not), which the GCS
# emulator the vertex_veo tests land from does not serve (each ask would wait 60 s, then fall back): the
# JSON API alone, as gcsfs did before. Read when gcsfs is first imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

if TYPE_CHECKING:
    from airflow_provider_videogen.testing import VideoGenSimulator

pytest_plugins = ["airflow_provider_videogen.testing.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata database once per test run (for ``dag.test()``)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def load_dag_file(airflow_db: Path) -> Callable[[Path], Any]:
    """
    Place a DAG file in the DAGs folder and import it; returns the module (its ``dag`` runs with ``dag.test()``).

    ``dag.test()`` serializes the DAG from its file, so the file must sit in the DAGs folder.
    """
    import importlib.util
    import shutil

    from airflow.configuration import conf

    def load(source: Path) -> Any:
        dags_folder = Path(conf.get("core", "dags_folder"))
        dags_folder.mkdir(parents=True, exist_ok=True)
        path = dags_folder / source.name
        shutil.copyfile(source, path)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def videogen_simulator_settings() -> dict[str, Any]:
    """The suite's simulator: its key, and a lifecycle quick enough for many tests."""
    return {"api_key": API_KEY, "queued_seconds": 0.2, "running_seconds": 0.3, "video_size": 200_000}


@pytest.fixture
def sim(videogen_simulator: VideoGenSimulator) -> VideoGenSimulator:
    """The plugin's simulator under a short name, with no tasks, faults or logged requests."""
    return videogen_simulator


# ---- Amazon Bedrock: a real S3 server (moto) the simulator writes videos into, and the connections ----

#: The bucket the bedrock_video tests' videos are written to, and the aws connection they borrow.
BEDROCK_BUCKET = "videogen-bedrock"
BEDROCK_AWS_CONN = "aws_bedrock_test"
#: The secret key of that aws connection: it must never show anywhere.
BEDROCK_SECRET = "bedrock-test-secret-key"


@pytest.fixture(scope="session")
def bedrock_s3_endpoint() -> Any:
    """An S3 server (moto) on a free loopback port, with the bucket Bedrock writes videos to."""
    pytest.importorskip("airflow.providers.amazon")
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    keys = {"aws_access_key_id": "t", "aws_secret_access_key": "t", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=endpoint, **keys).create_bucket(Bucket=BEDROCK_BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def bedrock_connection(
    sim: VideoGenSimulator, videogen_connection: Any, bedrock_s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    """Return a factory of ``bedrock_video`` connections to the simulator, borrowing an ``aws`` connection.

    Call it with the connection id and the S3 prefix videos are written under (``s3://bucket/...``);
    the simulator writes each finished video into the moto server.
    """
    aws = {
        "conn_type": "aws",
        "login": "AKIDBEDROCKTEST",
        "password": BEDROCK_SECRET,
        "extra": {"region_name": "us-east-1", "endpoint_url": bedrock_s3_endpoint},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{BEDROCK_AWS_CONN.upper()}", json.dumps(aws))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    sim.configure(s3_endpoint=bedrock_s3_endpoint)

    def define(conn_id: str, output_s3_uri: str) -> str:
        return str(
            videogen_connection(
                conn_id=conn_id,
                api_style="bedrock_video",
                api_key="",
                aws_conn_id=BEDROCK_AWS_CONN,
                region_name="us-east-1",
                bedrock_output_s3_uri=output_s3_uri,
            )
        )

    return define


#: The Google connection the vertex_veo tests borrow, and the project and location they name.
VERTEX_GCP_CONN = "google_vertex_test"
VERTEX_PROJECT = "videogen-test"
VERTEX_LOCATION = "us-central1"
VERTEX_ACCOUNT = "videogen-test@videogen-test.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def vertex_private_key() -> str:
    """A service account's RSA private key (PEM), made for the session: google-auth signs its JWTs with it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def vertex_google_connection(vertex_private_key: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Return a function that defines the Google connection ``VERTEX_GCP_CONN`` for a token endpoint.

    The connection holds a service-account key made in the test whose ``token_uri`` is that endpoint
    (a simulator's): the real google-auth code signs the JWT and exchanges it there. Given a GCS
    endpoint (the emulator's), its ``gs://`` files are read and written there.
    """
    pytest.importorskip("airflow.providers.google")

    def define(token_uri: str, gcs_endpoint: str | None = None) -> None:
        key = {
            "type": "service_account",
            "project_id": VERTEX_PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": vertex_private_key,
            "client_email": VERTEX_ACCOUNT,
            "client_id": "1234567890",
            "token_uri": token_uri,
        }
        extra = {"keyfile_dict": json.dumps(key)}
        if gcs_endpoint:
            extra["gcs.endpoint"] = gcs_endpoint  # where Airflow's gs:// file system sends its calls
        google = {"conn_type": "google_cloud_platform", "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{VERTEX_GCP_CONN.upper()}", json.dumps(google))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    return define


@pytest.fixture
def server_side_copies(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """The server-side copies a stored-object landing makes, as ``(source, target)`` paths, in order.

    Each copy still happens; an empty list means the bytes went through the worker instead.
    """
    from airflow_provider_videogen.download import stored

    copies: list[tuple[str, str]] = []
    real_same_store = stored._same_store

    def same_store(source: Any, destination: Any) -> bool:
        same = real_same_store(source, destination)
        real_copy = source.fs.copy
        if same:
            monkeypatch.setattr(source.fs, "copy", lambda a, b, **kw: (copies.append((a, b)), real_copy(a, b, **kw)))
        return same

    monkeypatch.setattr(stored, "_same_store", same_store)
    return copies


#: The bucket of the GCS emulator that vertex_veo videos are written to.
VERTEX_BUCKET = "videogen-vertex"


@pytest.fixture(scope="session")
def gcs_endpoint() -> Any:
    """A GCS server (the GCS emulator, from PyPI) on a free loopback port, with the bucket ``VERTEX_BUCKET``."""
    pytest.importorskip("gcsfs")
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    from tests.e2e.deployment import free_port

    port = free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket=VERTEX_BUCKET)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def vertex_connection(
    sim: VideoGenSimulator, videogen_connection: Any, vertex_google_connection: Callable[[str], None]
) -> Callable[..., str]:
    """Return a factory of ``vertex_veo`` connections to the simulator, borrowing a Google connection."""
    vertex_google_connection(f"{sim.base_url}/token")

    def define(conn_id: str, **extra: Any) -> str:
        options = {"gcp_conn_id": VERTEX_GCP_CONN, "project_id": VERTEX_PROJECT, "location": VERTEX_LOCATION}
        return str(videogen_connection(conn_id=conn_id, api_style="vertex_veo", api_key="", **{**options, **extra}))

    return define
