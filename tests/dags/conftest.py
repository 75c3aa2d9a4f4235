"""Test set-up for the DAGs, run inside an Airflow virtualenv (scripts/test_dags.sh).

Airflow reads its configuration when first imported, so the environment is prepared here, at
conftest import: a private AIRFLOW_HOME, and a DAGs folder that is a copy of dag_assets/dags
(Airflow 3's dag.test() needs the DAG file inside the configured DAGs folder; the tests also write
pipeline configurations into it). DagBag does not put the DAGs folder on sys.path in Airflow 3,
so it goes on sys.path here, as MWAA does.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_DAGS = REPO / "dag_assets" / "dags"
_HOME = Path(tempfile.mkdtemp(prefix="mlops-airflow-home-"))
DAGS_FOLDER = _HOME / "dags"
shutil.copytree(SOURCE_DAGS, DAGS_FOLDER, ignore=shutil.ignore_patterns("__pycache__"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # Fast polling and no task retries: a failure shows at once instead of after a retry delay.
        "MLOPS_CHECK_INTERVAL_SECONDS": "1",
        "MLOPS_TASK_RETRIES": "0",
        "MLOPS_ENDPOINT_TIMEOUT_SECONDS": "120",
        "MLOPS_LEASE_POLL_SECONDS": "1",
    }
)
for path in (str(DAGS_FOLDER), str(REPO)):
    if path not in sys.path:
        sys.path.insert(0, path)
# On MWAA the aws_default connection exists and resolves to the execution role; here it resolves
# to the local AWS through boto3's AWS_ENDPOINT_URL (set by the local_aws fixture).
os.environ.setdefault("AIRFLOW_CONN_AWS_DEFAULT", '{"conn_type": "aws"}')

import subprocess  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def dagbag():
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3

        return DagBag(str(DAGS_FOLDER))
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2

        return DagBag(str(DAGS_FOLDER), include_examples=False)


@pytest.fixture(scope="session")
def sdk_dag_callbacks(dagbag):
    """Airflow 3.3.1's dag.test() runs DAG-level callbacks with the *serialized* DAG, whose
    required Params (no default) cannot be merged into a template context: building it raises
    ParamValidationError before the callback runs. In a real deployment the DAG processor runs
    DAG callbacks with the parsed (SDK) DAG; this hands dag.test() the same object."""
    from airflow.models.dagrun import DagRun

    original = getattr(DagRun, "execute_dag_callbacks", None)
    if original is None:  # Airflow 2 runs callbacks with the DAG object itself
        yield
        return

    def with_sdk_dag(self, dag, *args, **kwargs):
        return original(self, dagbag.dags.get(dag.dag_id, dag), *args, **kwargs)

    DagRun.execute_dag_callbacks = with_sdk_dag
    yield
    DagRun.execute_dag_callbacks = original


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database in the private AIRFLOW_HOME (SQLite)."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"airflow db migrate: {time.monotonic() - started:.1f} s")
    from airflow import settings

    settings.configure_orm()


@pytest.fixture(scope="session")
def dags_in_db(airflow_db, dagbag):
    """The DAGs registered in the metadata DB as the scheduler would, so TriggerDagRunOperator
    finds its target. Airflow 3's dag.test() syncs the DAG bundle itself; 2.11's does not."""
    if hasattr(dagbag, "sync_to_db"):
        dagbag.sync_to_db()


@pytest.fixture(scope="session")
def local_aws():
    """The local AWS server (local_aws, run by the main virtualenv's Python) for the session."""
    from local_aws import LocalAws

    with LocalAws() as aws:
        saved = {k: os.environ.get(k) for k in aws.env}
        os.environ.update(aws.env)
        yield aws
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def boto(local_aws):
    import boto3

    return boto3.session.Session(region_name=local_aws.region)


@pytest.fixture(scope="session")
def slack_sink():
    from harness import SlackSink

    with SlackSink() as sink:
        yield sink


@pytest.fixture
def env(airflow_db, dags_in_db, local_aws, boto, slack_sink, dagbag, sdk_dag_callbacks):
    """What an integration test runs DAGs with: the local AWS (base scenario), boto3, the Slack sink
    and the parsed DAGs."""
    from harness import BASE_SCENARIO

    local_aws.set_scenario(BASE_SCENARIO)
    return {"aws": local_aws, "boto": boto, "slack": slack_sink, "dags": dagbag.dags}
