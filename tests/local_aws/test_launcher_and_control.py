"""Starting/stopping the server, the stdlib-only launcher, the control API, moto passthrough."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import boto3
import pytest

from local_aws import LocalAws
from local_aws.launcher import REPO_ROOT
from local_aws.scenario import ScenarioError

pytestmark = pytest.mark.integration


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def test_context_manager_starts_on_loopback_and_stops_without_leaks(tmp_path):
    with LocalAws(state_dir=tmp_path / "state") as aws:
        assert aws.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{aws.url}/_local_aws/health") as response:  # noqa: S310
            assert json.load(response) == {"status": "ok", "moto": "5.2.5"}
        process = aws._process
        url = aws.url
        assert (tmp_path / "state" / "url").read_text() == url
    assert process.poll() is not None  # exited and reaped
    assert not port_open(url)
    assert "local AWS stopped" in (tmp_path / "state" / "local_aws.log").read_text()


def test_launcher_needs_only_the_standard_library(tmp_path):
    # python -S: no site-packages (so no moto, no boto3), as in an Airflow venv without moto.
    script = textwrap.dedent(
        f"""
        import sys, urllib.request, json
        sys.path.insert(0, {str(REPO_ROOT)!r})
        try:
            import moto
            raise SystemExit("moto importable: the test proves nothing")
        except ImportError:
            pass
        from local_aws import LocalAws
        with LocalAws(scenario={{"training": {{"delay_seconds": 0.1}}}}, python={sys.executable!r}) as aws:
            scenario = json.load(urllib.request.urlopen(aws.url + "/_local_aws/scenario"))
            print(scenario["training"]["delay_seconds"])
        """
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1"


def test_cli_prints_the_url_and_stops_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_aws", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("LOCAL_AWS_URL=http://127.0.0.1:")
        assert (tmp_path / "url").read_text() == line.split("=", 1)[1]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_scenario_typos_fail_before_anything_starts():
    with pytest.raises(ScenarioError, match="traning"):
        LocalAws(scenario={"traning": {"delay_seconds": 1}})
    with pytest.raises(ScenarioError, match="name_contain"):
        LocalAws(scenario={"training": {"rules": [{"when": {"name_contain": "x"}, "fail": "y"}]}})


def test_scenario_file_and_control_api(tmp_path, aws):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"endpoints": {"fail_next_updates": 2}}))
    from local_aws.scenario import load

    aws.update_scenario(load(path))
    assert aws.scenario()["endpoints"]["fail_next_updates"] == 2
    assert aws.scenario()["endpoints"]["create_delay_seconds"] == 0.2  # merged, not replaced
    aws.set_scenario({})
    assert aws.scenario()["endpoints"]["fail_next_updates"] == 0
    assert aws.scenario()["training"]["delay_seconds"] == 0.5  # replaced: back to defaults
    request = urllib.request.Request(  # noqa: S310
        f"{aws.url}/_local_aws/scenario", data=b'{"bogus": 1}', method="PATCH"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request)  # noqa: S310
    assert error.value.code == 400


def test_other_services_are_plain_moto(aws, unique):
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    queue = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Subject="s", Message="training finished")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert messages[0]["Body"] == "training finished"
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_per_service_endpoint_variable_is_enough(aws, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", aws.url)
    assert "Models" in boto3.client("sagemaker").list_models()


def test_unimplemented_sagemaker_operations_fall_through_to_moto(sm, unique):
    name = unique("exp")
    sm.create_experiment(ExperimentName=name)
    assert sm.describe_experiment(ExperimentName=name)["ExperimentName"] == name


def test_reset_forgets_everything_and_restores_the_start_scenario():
    with LocalAws(scenario={"training": {"delay_seconds": 0.1}}) as aws:
        session = boto3.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fixed local credentials
            region_name="us-east-1",
        )
        sm = session.client("sagemaker", endpoint_url=aws.url)
        s3 = session.client("s3", endpoint_url=aws.url)
        sm.create_model(ModelName="before-reset", PrimaryContainer={"Image": "repo/m:1"})
        sm.create_endpoint_config(
            EndpointConfigName="before-reset",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "before-reset"}],
        )
        sm.create_endpoint(EndpointName="before-reset", EndpointConfigName="before-reset")
        s3.create_bucket(Bucket="before-reset")
        aws.update_scenario({"training": {"delay_seconds": 5}})
        assert aws.events()

        aws.reset()

        assert sm.list_models()["Models"] == []
        assert sm.list_endpoints()["Endpoints"] == []
        assert s3.list_buckets()["Buckets"] == []
        assert aws.events() == []
        assert aws.scenario()["training"]["delay_seconds"] == 0.1
        time.sleep(0.7)  # the endpoint's worker finds its endpoint gone and stops quietly
        assert "crashed" not in aws.log_path.read_text()
