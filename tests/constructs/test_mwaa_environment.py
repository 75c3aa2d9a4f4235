import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match
from synth_helpers import new_stack, template_of

from mlops_constructs.dag_bundle import DEFAULT_DAG_ASSETS, requirements_text, stage_bundle
from mlops_constructs.mwaa import MwaaEnvironment


def _dag_assets(tmp_path: Path, requirements: str) -> Path:
    root = tmp_path / "dag_assets"
    (root / "dags").mkdir(parents=True)
    (root / "dags" / "example_dag.py").write_text("# a DAG\n")
    shutil.copytree(DEFAULT_DAG_ASSETS / "constraints", root / "constraints")
    (root / "requirements.txt").write_text(requirements)
    (root / "startup.sh").write_text("#!/bin/sh\nexport MLOPS=1\n")
    return root


def _environment_template(dag_assets: Path | None = None, **props):
    stack = new_stack()
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["eu-west-1a", "eu-west-1b"], nat_gateways=1)
    MwaaEnvironment(
        stack,
        "Airflow",
        environment_name="mlops-dev",
        vpc=vpc,
        subnets=vpc.private_subnets,
        key=kms.Key(stack, "Key", enable_key_rotation=True),
        access_logs_bucket=s3.Bucket(stack, "Logs"),
        **({"dag_assets": dag_assets} if dag_assets else {}),
        **props,
    )
    return template_of(stack)


def _version_lookups(template) -> dict[str, str]:
    """S3 key -> the physical id of the custom resource that reads its object version."""
    found = {}
    for resource in template.find_resources("Custom::AWS").values():
        create = json.loads(json.dumps(resource["Properties"]["Create"], default=str))
        text = create if isinstance(create, str) else json.dumps(create)
        for key in ("environment/requirements.txt", "environment/plugins.zip", "environment/startup.sh"):
            if key in text:
                found[key] = text
    return found


def test_requirements_plugins_and_startup_are_pinned_to_object_versions(tmp_path):
    template = _environment_template(_dag_assets(tmp_path, "semver==3.0.4\n"))
    environment = next(iter(template.find_resources("AWS::MWAA::Environment").values()))["Properties"]
    for prop, key in [
        ("RequirementsS3ObjectVersion", "requirements.txt"),
        ("PluginsS3ObjectVersion", "plugins.zip"),
        ("StartupScriptS3ObjectVersion", "startup.sh"),
    ]:
        logical_id, attribute = environment[prop]["Fn::GetAtt"]
        assert attribute == "VersionId"
        assert key in json.dumps(template.find_resources("Custom::AWS")[logical_id]["Properties"]["Create"])
        assert environment[prop.replace("ObjectVersion", "Path")] == f"environment/{key}"


def test_a_requirements_change_changes_the_pinned_version_lookup(tmp_path):
    before = _version_lookups(_environment_template(_dag_assets(tmp_path / "a", "semver==3.0.4\n")))
    after = _version_lookups(_environment_template(_dag_assets(tmp_path / "b", "semver==3.0.4\nslack-sdk==3.43.0\n")))
    assert before["environment/requirements.txt"] != after["environment/requirements.txt"]
    # Unchanged files keep their lookup, so MWAA is not updated for nothing.
    assert before["environment/plugins.zip"] == after["environment/plugins.zip"]


def _deployed_assets(template) -> dict[str, list]:
    """Environment file -> the asset keys its BucketDeployment copies."""
    return {
        name: resource["Properties"]["SourceObjectKeys"]
        for logical_id, resource in template.find_resources("Custom::CDKBucketDeployment").items()
        for name in ("requirementstxt", "pluginszip", "startupsh")
        if f"EnvironmentFile{name}" in logical_id
    }


def test_a_requirements_change_re_uploads_only_requirements(tmp_path):
    """Re-uploading an unchanged file would make its pinned object version noncurrent, and the
    bucket's lifecycle would then delete the version the environment still runs on."""
    before = _deployed_assets(_environment_template(_dag_assets(tmp_path / "a", "semver==3.0.4\n")))
    after = _deployed_assets(_environment_template(_dag_assets(tmp_path / "b", "slack-sdk==3.43.0\n")))
    assert set(before) == {"requirementstxt", "pluginszip", "startupsh"}
    assert before["requirementstxt"] != after["requirementstxt"]
    assert before["pluginszip"] == after["pluginszip"]
    assert before["startupsh"] == after["startupsh"]


def test_each_environment_file_is_staged_alone():
    bundle = stage_bundle(airflow_version="3.3.1")
    for name, path in bundle.environment_files.items():
        assert [p.name for p in path.parent.iterdir()] == [name]


def test_the_shipped_startup_script_is_deployed_pinned_and_valid_shell():
    startup = DEFAULT_DAG_ASSETS / "startup.sh"
    subprocess.run(["sh", "-n", str(startup)], check=True)
    # Its exports must reach Airflow: a script that exits early (or under `set -e`) loses them.
    body = [line.strip() for line in startup.read_text().splitlines() if not line.strip().startswith("#")]
    assert not any(line.startswith(("exit", "set -e")) for line in body)
    environment = next(iter(_environment_template().find_resources("AWS::MWAA::Environment").values()))
    assert environment["Properties"]["StartupScriptS3Path"] == "environment/startup.sh"
    assert "Fn::GetAtt" in environment["Properties"]["StartupScriptS3ObjectVersion"]


def test_private_web_server_logging_and_retention_by_default(tmp_path):
    template = _environment_template(_dag_assets(tmp_path, ""))
    template.has_resource_properties(
        "AWS::MWAA::Environment",
        {
            "AirflowVersion": "3.3.1",
            "WebserverAccessMode": "PRIVATE_ONLY",
            "DagS3Path": "dags",
            "KmsKey": Match.any_value(),
            "LoggingConfiguration": {
                kind: {"Enabled": True, "LogLevel": "INFO"}
                for kind in ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs")
            },
        },
    )


def test_mwaa_log_groups_exist_encrypted_with_the_key_and_expiring_before_the_environment(tmp_path):
    """MWAA writes each log type to airflow-<environment>-<type>. Created by CloudFormation before
    the environment, they carry the customer key and a retention; left to MWAA (or to LogRetention,
    which only sets a retention), they are created without the key."""
    template = _environment_template(_dag_assets(tmp_path, ""))
    resources = template.to_json()["Resources"]
    (key_id,) = template.find_resources("AWS::KMS::Key")
    groups = {
        r["Properties"]["LogGroupName"]: (lid, r)
        for lid, r in resources.items()
        if r["Type"] == "AWS::Logs::LogGroup" and isinstance(r["Properties"].get("LogGroupName"), str)
    }
    expected = [f"airflow-mlops-dev-{t}" for t in ("DAGProcessing", "Scheduler", "Task", "WebServer", "Worker")]
    (environment_id,) = template.find_resources("AWS::MWAA::Environment")
    for name in expected:
        logical_id, group = groups[name]
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert group["Properties"]["RetentionInDays"] == 90
        assert group["DeletionPolicy"] == "RetainExceptOnCreate"
        assert logical_id in resources[environment_id]["DependsOn"]
    template.resource_count_is("Custom::LogRetention", 0)


def test_source_bucket_is_versioned_and_dag_sync_leaves_published_pipeline_configs_alone(tmp_path):
    template = _environment_template(_dag_assets(tmp_path, ""))
    template.has_resource_properties("AWS::S3::Bucket", {"VersioningConfiguration": {"Status": "Enabled"}})
    template.has_resource_properties(
        "Custom::CDKBucketDeployment",
        {"DestinationBucketKeyPrefix": "dags/", "Prune": True, "Exclude": ["pipelines/*"]},
    )


def test_execution_role_is_scoped_to_this_environment(tmp_path):
    template = _environment_template(_dag_assets(tmp_path, ""))
    statements = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    publish = next(s for s in statements if s["Action"] == "airflow:PublishMetrics")
    assert "environment/mlops-dev" in json.dumps(publish["Resource"])
    logs = next(
        s
        for s in statements
        if "logs:PutLogEvents" in s["Action"] and "airflow-mlops-dev-*" in json.dumps(s["Resource"])
    )
    assert logs["Effect"] == "Allow"


def test_airflow_2_is_supported_and_other_versions_are_refused(tmp_path):
    template = _environment_template(_dag_assets(tmp_path, ""), airflow_version="2.11.2")
    template.has_resource_properties("AWS::MWAA::Environment", {"AirflowVersion": "2.11.2"})
    with pytest.raises(ValueError, match="airflow_version='2.9.2'"):
        _environment_template(_dag_assets(tmp_path / "x", ""), airflow_version="2.9.2")


def test_requirements_carry_the_image_constraints_from_the_bucket(tmp_path):
    text = requirements_text(_dag_assets(tmp_path, "semver==3.0.4\n--constraint https://example.com/c.txt\n"), "3.3.1")
    lines = text.splitlines()
    assert lines[0] == '--constraint "/usr/local/airflow/dags/constraints/constraints-3.3.1.txt"'
    assert "semver==3.0.4" in lines
    assert not any("example.com" in line for line in lines), "a second constraint line would override the image's"


def test_bundle_is_deterministic_and_ships_mlops_core_in_plugins(tmp_path):
    assets = _dag_assets(tmp_path, "semver==3.0.4\n")
    first, second = (
        stage_bundle(dag_assets=assets, airflow_version="3.3.1"),
        stage_bundle(dag_assets=assets, airflow_version="3.3.1"),
    )
    assert first.hashes == second.hashes
    with zipfile.ZipFile(first.environment_files["plugins.zip"]) as archive:
        assert "mlops_core/names.py" in archive.namelist()
    assert (first.dags_dir / "constraints" / "constraints-3.3.1.txt").is_file()
