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

os.environ.update({
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
})
for path in (str(DAGS_FOLDER), str(REPO)):
    if path not in sys.path:
        sys.path.insert(0, path)
