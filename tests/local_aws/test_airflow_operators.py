"""Airflow's own SageMaker operators and hook (both MWAA Airflow versions) against the local AWS.

Runs airflow_operator_probe.py with each Airflow virtualenv's Python (created by
scripts/airflow_venv.sh); skipped for a version whose venv is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from local_aws_helpers import ROLE

from local_aws import LocalAws
from local_aws.launcher import REPO_ROOT
from local_aws.roles import ensure_service_role

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PROBE = Path(__file__).with_name("airflow_operator_probe.py")
SCENARIO = {
    "training": {
        "delay_seconds": 0.3,
        "rules": [{"when": {"name_contains": "doomed"}, "fail": "AlgorithmError: x"}],
    },
    "processing": {"delay_seconds": 0.3},
    # Create, create again (the operator switches to update), then an update that fails.
    "endpoints": {
        "create_delay_seconds": 0.3,
        "update_delay_seconds": 0.3,
        "rules": [{"when": {"endpoint_config_contains": "probe-v3"}, "fail": "health check failed"}],
    },
}


@pytest.mark.parametrize("version", ["3.3.1", "2.11.2"])
def test_airflow_sagemaker_operators_work_unmodified(version, tmp_path):
    python = REPO_ROOT / ".venvs" / f"airflow-{version}" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no Airflow {version} venv (scripts/airflow_venv.sh {version})")
    with LocalAws(scenario=SCENARIO) as aws:
        iam = boto3.client(
            "iam",
            endpoint_url=aws.url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ensure_service_role(iam, ROLE.rsplit("/", 1)[-1])  # SageMaker assumes it, as on AWS
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(aws.env, AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="false")
        output = tmp_path / "results.json"
        run = subprocess.run(
            [str(python), str(PROBE), str(output)], env=env, capture_output=True, text=True, timeout=240
        )
    assert run.returncode == 0, run.stderr[-4000:]
    results = json.loads(output.read_text())

    assert results["training"] == ["Completed", "s3://probe-artifacts/runs/probe-train/output/model.tar.gz"]
    assert results["failed_training"] == "SageMaker resource failed because AlgorithmError: x"
    assert results["processing"] == ["Completed", 0.9]
    assert results["endpoint"] == [
        ["InService", "probe-v1"],
        ["InService", "probe-v2"],  # duplicate create -> the operator updated it
        ["InService", "probe-v2"],  # failed update rolled back: the operator still "succeeds"
    ]
    assert results["group_created"] == [True, False]
    assert results["package"].endswith(":model-package/probe-group/1")
    assert results["processing_jobs_named"] == 1
