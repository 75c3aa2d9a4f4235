"""DagTrigger: the Lambda users rely on (runtime, env, limits) and an IAM policy scoped to one
MWAA environment; cdk-nag and cfn-lint clean; a real bundle that runs without the dev venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402
from aws_cdk import App, Environment, Stack, Validations  # noqa: E402
from aws_cdk import aws_kms as kms  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from cfnlint.api import lint  # noqa: E402
from iam_statements import render  # noqa: E402

from mlops_constructs import dag_trigger  # noqa: E402
from mlops_constructs.dag_trigger import DagTrigger  # noqa: E402
from mlops_core.platform_names import PlatformNames  # noqa: E402

ACCOUNT, REGION = "111111111111", "eu-west-1"
PLATFORM = PlatformNames(environment="dev", account=ACCOUNT, region=REGION)
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synth(**props) -> tuple[Stack, DagTrigger]:
    app = App(context=NO_BUNDLING)
    stack = Stack(app, "Trigger", env=Environment(account=ACCOUNT, region=REGION))
    return stack, DagTrigger(stack, "DagTrigger", environment_name="dev", **props)


def test_function_runtime_name_limits_and_environment():
    stack, trigger = synth()
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": PLATFORM.trigger_function,
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "dag_trigger_fn.handler.handler",
            "ReservedConcurrentExecutions": 5,
            "Timeout": 60,
            "Environment": {"Variables": Match.object_like({"MWAA_ENVIRONMENT_NAME": PLATFORM.mwaa_environment})},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": f"/aws/lambda/{PLATFORM.trigger_function}",
            "RetentionInDays": 90,
        },
    )
    assert trigger.function_name == PLATFORM.trigger_function


def test_explicit_mwaa_environment_and_limits():
    stack, _ = synth(mwaa_environment_name="other-env", reserved_concurrent_executions=2)
    Template.from_stack(stack).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "ReservedConcurrentExecutions": 2,
            "Environment": {"Variables": Match.object_like({"MWAA_ENVIRONMENT_NAME": "other-env"})},
        },
    )


def _statements(template: Template) -> list[dict]:
    policies = template.find_resources("AWS::IAM::Policy")
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def _arn(resource) -> str:
    """Render Fn::Join ARNs with the pseudo parameters they contain."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        return "GetAtt:" + ".".join(resource["Fn::GetAtt"])
    parts = resource["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "{" + next(iter(p.values())) + "}" for p in parts)


def test_role_may_only_invoke_the_rest_api_of_its_own_environment():
    stack, _ = synth()
    template = Template.from_stack(stack)
    by_action = {}
    for statement in _statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            by_action[action] = [
                _arn(r)
                for r in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
            ]
    assert by_action["airflow:InvokeRestApi"] == [
        f"arn:{{AWS::Partition}}:airflow:{REGION}:{ACCOUNT}:role/{PLATFORM.mwaa_environment}/User"
    ]
    assert by_action["airflow:GetEnvironment"] == [
        f"arn:{{AWS::Partition}}:airflow:{REGION}:{ACCOUNT}:environment/{PLATFORM.mwaa_environment}"
    ]
    assert set(by_action) == {
        "airflow:InvokeRestApi",
        "airflow:GetEnvironment",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert not any(a.startswith("mwaa:") for a in by_action)
    # No AWS managed policies on the function's role.
    role = next(iter(template.find_resources("AWS::IAM::Role").values()))
    assert "ManagedPolicyArns" not in role["Properties"]


def test_each_project_gets_an_alias_named_after_it_with_an_iam_authorized_url():
    stack, trigger = synth()
    for project in ("fraud", "malware"):
        trigger.add_project(project)
    assert trigger.add_project("fraud") is trigger.project_aliases["fraud"]  # once per project
    template = Template.from_stack(stack)
    aliases = template.find_resources("AWS::Lambda::Alias")
    assert sorted(a["Properties"]["Name"] for a in aliases.values()) == ["fraud", "malware"]
    urls = template.find_resources("AWS::Lambda::Url")
    assert len(urls) == 2
    # A URL on the alias (Qualifier), not on the unqualified function.
    assert sorted((u["Properties"]["AuthType"], u["Properties"]["Qualifier"]) for u in urls.values()) == [
        ("AWS_IAM", "fraud"),
        ("AWS_IAM", "malware"),
    ]
    # No resource policy opens the function to anyone: same-account callers need their own grant.
    template.resource_count_is("AWS::Lambda::Permission", 0)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"MLOPS_ENVIRONMENT": "dev"})}},
    )


def test_an_all_digit_project_cannot_be_an_alias():
    _, trigger = synth()
    with pytest.raises(ValueError, match="alias"):
        trigger.add_project("2024")


def test_cdk_nag_and_cfn_lint_are_clean():
    app = App(context=NO_BUNDLING)
    stack = Stack(app, "Trigger", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    DagTrigger(stack, "DagTrigger", environment_name="dev", drift_topic_key=key).add_project("fraud")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    template = assembly.get_stack_artifact(stack.artifact_id).template
    assert [str(m) for m in lint(json.dumps(template), regions=[REGION])] == []


def test_asset_hash_follows_the_sources():
    assert dag_trigger.source_hash() == dag_trigger.source_hash()
    assert dag_trigger.source_hash() != dag_trigger.source_hash(platform="manylinux2014_x86_64")


@pytest.mark.integration
@pytest.mark.slow
def test_real_synth_bundles_a_lambda_package_for_arm64(tmp_path):
    app = App(outdir=str(tmp_path / "cdk.out"))
    stack = Stack(app, "Trigger", env=Environment(account=ACCOUNT, region=REGION))
    DagTrigger(stack, "DagTrigger", environment_name="dev")
    assembly = app.synth()
    (asset,) = [p for p in Path(assembly.directory).glob("asset.*") if p.is_dir()]
    assert (asset / "dag_trigger_fn" / "handler.py").is_file()
    assert (asset / "mlops_core" / "names.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir() and (asset / "semver").is_dir()
    compiled = [p.name for p in (asset / "pydantic_core").glob("*.so")]
    assert compiled == ["_pydantic_core.cpython-314-aarch64-linux-gnu.so"]


@pytest.mark.integration
@pytest.mark.slow
def test_bundle_runs_with_only_the_lambda_runtime_libraries(tmp_path):
    """Build the same layout for this machine's Python and call the handler in a process that
    sees only the bundle plus what the Lambda runtime provides (boto3 and its dependencies)."""
    bundle = tmp_path / "bundle"
    machine = "manylinux2014_" + os.uname().machine
    dag_trigger.build_bundle(bundle, platform=machine, python_version=f"{sys.version_info[0]}.{sys.version_info[1]}")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    import boto3, botocore, dateutil, jmespath, s3transfer, urllib3  # noqa: E401, I001

    for module in (boto3, botocore, dateutil, jmespath, s3transfer, urllib3):
        (runtime / module.__name__).symlink_to(Path(module.__file__).parent)
    import six

    (runtime / "six.py").symlink_to(six.__file__)
    script = (
        "import json, sys\n"
        "from dag_trigger_fn.handler import handler\n"
        "class C:\n"
        "    function_name='f'; memory_limit_in_mb=128; aws_request_id='r'\n"
        "    invoked_function_arn='arn:aws:lambda:eu-west-1:111111111111:function:f:fraud'\n"
        "    def get_remaining_time_in_millis(self): return 30000\n"
        "print(json.dumps(handler({'action': 'trigger', 'dag_id': 'nope'}, C())))\n"
        "import pydantic; assert pydantic.__file__.startswith(sys.argv[1]), pydantic.__file__\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(bundle)],
        env={
            "PYTHONPATH": f"{bundle}:{runtime}",
            "MWAA_ENVIRONMENT_NAME": "mlops-dev",
            "AWS_DEFAULT_REGION": REGION,
            "PATH": os.environ["PATH"],
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 403 and answer["error"]["field"] == "dag_id"


def test_reserved_concurrency_can_be_left_out():
    stack, _ = synth(reserved_concurrent_executions=None)
    function = next(iter(Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()))
    assert "ReservedConcurrentExecutions" not in function["Properties"]


@pytest.mark.integration
@pytest.mark.slow
def test_bundling_needs_no_network_once_the_wheels_are_cached(tmp_path, monkeypatch):
    assert dag_trigger._find_uv(), "uv is pinned in requirements.txt: the offline path is the one synth uses"
    dag_trigger.prefetch_dependencies()  # what bootstrap does with network
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # nothing listens: any download fails
    dag_trigger.build_bundle(tmp_path / "bundle")
    assert (tmp_path / "bundle" / "pydantic_core").is_dir()


def _drift_synth(*projects: str) -> dict:
    app = App(context=NO_BUNDLING)
    stack = Stack(app, "Trigger", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    trigger = DagTrigger(stack, "DagTrigger", environment_name="dev", drift_topic_key=key)
    for project in projects:
        trigger.add_project(project)
    return Template.from_stack(stack).to_json()


def _resources(template: dict, kind: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_each_project_s_drift_topic_takes_only_that_project_s_drift_alarms_and_reaches_only_its_alias():
    template = _drift_synth("fraud", "payments")
    topics = _resources(template, "AWS::SNS::Topic")
    by_name = {t["Properties"]["TopicName"]: logical for logical, t in topics.items()}
    assert set(by_name) == {PLATFORM.drift_topic("fraud"), PLATFORM.drift_topic("payments")}
    assert all("KmsMasterKeyId" in topic["Properties"] for topic in topics.values())
    for policy in _resources(template, "AWS::SNS::TopicPolicy").values():
        (topic_ref,) = policy["Properties"]["Topics"]
        project = "fraud" if topic_ref["Ref"] == by_name[PLATFORM.drift_topic("fraud")] else "payments"
        allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
        assert [s["Principal"] for s in allows] == [{"Service": "cloudwatch.amazonaws.com"}]
        (allow,) = allows
        assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        assert render(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == (
            f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:mlops-dev-{project}--*-drift"
        )
    # Each alias is invoked by SNS from its own project's topic only.
    subscriptions = _resources(template, "AWS::SNS::Subscription")
    permissions = [
        p
        for p in _resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "sns.amazonaws.com"
    ]
    assert len(subscriptions) == 2 and len(permissions) == 2
    for subscription in subscriptions.values():
        assert subscription["Properties"]["Protocol"] == "lambda"
        topic = subscription["Properties"]["TopicArn"]["Ref"]
        alias = subscription["Properties"]["Endpoint"]["Ref"]
        project = "fraud" if topic == by_name[PLATFORM.drift_topic("fraud")] else "payments"
        assert f"Alias{project}" in alias
        (permission,) = [p for p in permissions if p["Properties"]["FunctionName"] == {"Ref": alias}]
        assert permission["Properties"]["SourceArn"] == {"Ref": topic}


def test_the_role_reads_only_the_projects_drift_summaries_decrypted_through_s3():
    template = _drift_synth("fraud")
    statements = [
        s
        for p in _resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (read,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert render(read["Resource"]) == f"arn:aws:s3:::{PLATFORM.artifact_bucket}/fraud/*/monitoring/latest-check.json"
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
