"""EndpointMonitoring and PlatformDashboard: the metrics, alarms and names operators rely on."""

from __future__ import annotations

import json
import os

# The built-in CloudFormation validation plugin costs ~2.5 s per synth; cfn-lint runs below instead.
os.environ.setdefault("CDK_VALIDATION", "false")

import pytest  # noqa: E402
from aws_cdk import App, Environment, Stack, Validations  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from aws_cdk import aws_sns as sns  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from cfnlint.api import lint  # noqa: E402

from mlops_constructs.monitoring import (  # noqa: E402
    VARIANT_NAME,
    EndpointMonitoring,
    PlatformDashboard,
    endpoint_alarm_name,
)
from mlops_core import names  # noqa: E402
from mlops_core.platform_names import PlatformNames  # noqa: E402

ACCOUNT, REGION = "111111111111", "eu-west-1"
PLATFORM = PlatformNames(environment="dev", account=ACCOUNT, region=REGION)
ENV, PROJECT, MODEL = "dev", "churn", "xgb-classifier"
ENDPOINT = names.endpoint_name(PROJECT, MODEL)
ENDPOINT_DIMS = {"EndpointName": ENDPOINT, "VariantName": VARIANT_NAME}


def make_stack(app: App | None = None) -> Stack:
    return Stack(app or App(), "Monitoring", env=Environment(account=ACCOUNT, region=REGION))


def alerts_topic(stack: Stack) -> sns.ITopic:
    return sns.Topic.from_topic_arn(stack, "Alerts", PLATFORM.alerts_topic_arn)


def imported_function(stack: Stack, id: str, name: str) -> lambda_.IFunction:
    # A literal ARN keeps FunctionName a plain string in the template (from_function_name would
    # put the partition token in it).
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return lambda_.Function.from_function_attributes(stack, id, function_arn=arn, same_environment=True)


def dashboard_body(template: Template, dashboard_name: str) -> dict:
    """The dashboard JSON with CloudFormation references (alarm ARNs, tokens) replaced by '<ref>'."""
    dashboards = template.find_resources(
        "AWS::CloudWatch::Dashboard", {"Properties": {"DashboardName": dashboard_name}}
    )
    assert len(dashboards) == 1, f"no dashboard named {dashboard_name}"
    body = next(iter(dashboards.values()))["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        _, parts = body["Fn::Join"]
        body = "".join(p if isinstance(p, str) else "<ref>" for p in parts)
    return json.loads(body)


def graphed_metrics(body: dict) -> set[tuple]:
    """(namespace, metric name, dimensions, statistic) of every metric drawn on the dashboard."""
    found = set()
    for widget in body["widgets"]:
        for entry in widget.get("properties", {}).get("metrics", []):
            if isinstance(entry[0], dict):  # a math expression line
                continue
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            namespace, metric, *rest = [e for e in entry if not isinstance(e, dict)]
            dims = tuple(sorted(zip(rest[0::2], rest[1::2], strict=True)))
            # CloudWatch graphs use Average when a line names no statistic (CDK then omits it).
            stat = options.get("stat", widget["properties"].get("stat", "Average"))
            found.add((namespace, metric, dims, stat))
    return found


def dims(mapping: dict[str, str]) -> tuple:
    return tuple(sorted(mapping.items()))


# ---- EndpointMonitoring --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> tuple[EndpointMonitoring, Template]:
    stack = make_stack()
    monitoring = EndpointMonitoring(
        stack,
        "Monitoring",
        environment=ENV,
        project=PROJECT,
        model=MODEL,
        alarm_topic=alerts_topic(stack),
        model_metrics=("f1", "auc"),
        latency_threshold_ms=250,
    )
    return monitoring, Template.from_stack(stack)


def test_endpoint_dashboard_graphs_every_metric_an_operator_reads(endpoint):
    monitoring, template = endpoint
    assert monitoring.dashboard_name == names.dashboard_name(ENV, PROJECT, MODEL)
    graphed = graphed_metrics(dashboard_body(template, monitoring.dashboard_name))
    sm = "AWS/SageMaker"
    instance = "/aws/sagemaker/Endpoints"
    expected = {
        (sm, "Invocations", dims(ENDPOINT_DIMS), "Sum"),
        (sm, "InvocationsPerInstance", dims(ENDPOINT_DIMS), "Sum"),
        (sm, "ModelLatency", dims(ENDPOINT_DIMS), "p50"),
        (sm, "ModelLatency", dims(ENDPOINT_DIMS), "p99"),
        (sm, "OverheadLatency", dims(ENDPOINT_DIMS), "p50"),
        (sm, "OverheadLatency", dims(ENDPOINT_DIMS), "p99"),
        (sm, "Invocation4XXErrors", dims(ENDPOINT_DIMS), "Sum"),
        (sm, "Invocation5XXErrors", dims(ENDPOINT_DIMS), "Sum"),
        (instance, "CPUUtilization", dims(ENDPOINT_DIMS), "Average"),
        (instance, "MemoryUtilization", dims(ENDPOINT_DIMS), "Average"),
        (instance, "DiskUtilization", dims(ENDPOINT_DIMS), "Average"),
    }
    model_dims = dims(names.model_metric_dimensions(ENV, PROJECT, MODEL))
    expected |= {(names.MODEL_METRICS_NAMESPACE, m, model_dims, "Maximum") for m in ("f1", "auc")}
    assert expected <= graphed, sorted(expected - graphed)


def test_endpoint_dashboard_graphs_each_variant_of_a_trial(endpoint):
    """A shadow or A/B trial adds a variant: a search over the endpoint's VariantName dimension shows
    each variant's line, whatever it is called."""
    monitoring, template = endpoint

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    searches = {text for text in strings(dashboard_body(template, monitoring.dashboard_name)) if "SEARCH(" in text}
    endpoint_name = monitoring.endpoint_name
    assert searches == {
        f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} EndpointName="{endpoint_name}" '
        f"MetricName=\"{metric}\"', '{statistic}', 60)"
        for metric, statistic in (("Invocations", "Sum"), ("Invocation5XXErrors", "Sum"), ("ModelLatency", "p99"))
    }


def test_endpoint_dashboard_shows_alarm_states(endpoint):
    monitoring, template = endpoint
    body = dashboard_body(template, monitoring.dashboard_name)
    alarm_widgets = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widgets) == 1
    assert len(alarm_widgets[0]["properties"]["alarms"]) == 4


def test_endpoint_alarms_have_deterministic_names_and_notify_the_topic(endpoint):
    monitoring, template = endpoint
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values()}
    assert set(by_name) == {
        endpoint_alarm_name(ENV, PROJECT, MODEL, kind)
        for kind in ("5xx-errors", "4xx-error-rate", "model-latency-p99", "memory-utilization")
    }
    for props in by_name.values():
        assert props["AlarmActions"] == [PLATFORM.alerts_topic_arn]
        assert props["OKActions"] == [PLATFORM.alerts_topic_arn]
        # No traffic is not an outage.
        assert props["TreatMissingData"] == "notBreaching"


def test_rollback_alarms_are_the_error_and_latency_alarms(endpoint):
    monitoring, template = endpoint
    expected = [
        endpoint_alarm_name(ENV, PROJECT, MODEL, k) for k in ("5xx-errors", "4xx-error-rate", "model-latency-p99")
    ]
    assert monitoring.rollback_alarm_names == expected
    for name in expected:
        template.has_resource_properties("AWS::CloudWatch::Alarm", {"AlarmName": name})
    # The names go into the pipeline configuration as plain strings, never tokens.
    assert all(isinstance(n, str) and "${Token" not in n for n in monitoring.rollback_alarm_names)


def test_latency_alarm_threshold_is_in_microseconds_on_p99(endpoint):
    _, template = endpoint
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": endpoint_alarm_name(ENV, PROJECT, MODEL, "model-latency-p99"),
            "Namespace": "AWS/SageMaker",
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "Threshold": 250_000,  # 250 ms
            "Period": 60,
            "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": Match.array_equals(
                [
                    {"Name": "EndpointName", "Value": ENDPOINT},
                    {"Name": "VariantName", "Value": VARIANT_NAME},
                ]
            ),
        },
    )


def test_5xx_alarm_fires_on_any_server_error_per_minute(endpoint):
    _, template = endpoint
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": endpoint_alarm_name(ENV, PROJECT, MODEL, "5xx-errors"),
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Period": 60,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
        },
    )


def test_4xx_alarm_is_a_rate_of_invocations(endpoint):
    _, template = endpoint
    alarm = template.find_resources(
        "AWS::CloudWatch::Alarm",
        {"Properties": {"AlarmName": endpoint_alarm_name(ENV, PROJECT, MODEL, "4xx-error-rate")}},
    )
    props = next(iter(alarm.values()))["Properties"]
    assert props["Threshold"] == 5
    expression = next(m for m in props["Metrics"] if "Expression" in m)
    assert expression["ReturnData"] is True
    assert "100 * FILL(errors4xx, 0) / invocations" in expression["Expression"]
    inputs = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert inputs == {"invocations": "Invocations", "errors4xx": "Invocation4XXErrors"}


def test_memory_alarm_uses_the_instance_namespace(endpoint):
    _, template = endpoint
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": endpoint_alarm_name(ENV, PROJECT, MODEL, "memory-utilization"),
            "Namespace": "/aws/sagemaker/Endpoints",
            "MetricName": "MemoryUtilization",
            "Statistic": "Maximum",
            "Threshold": 90,
        },
    )


def test_one_model_costs_four_alarms_and_one_dashboard():
    """The per-model budget that lets 20-40 models share a stack under the 500-resource limit."""
    stack = make_stack()
    topic = alerts_topic(stack)
    for i in range(3):
        EndpointMonitoring(stack, f"M{i}", environment=ENV, project=PROJECT, model=f"model-{i}", alarm_topic=topic)
    template = Template.from_stack(stack)
    assert len(template.to_json()["Resources"]) == 3 * 5
    template.resource_count_is("AWS::CloudWatch::Alarm", 12)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 3)


def test_metric_helpers_are_keyed_by_the_endpoint_name(endpoint):
    monitoring, _ = endpoint
    metric = monitoring.metric_invocations()
    assert (metric.namespace, metric.metric_name, metric.dimensions) == (
        "AWS/SageMaker",
        "Invocations",
        ENDPOINT_DIMS,
    )
    assert monitoring.metric_model_latency(statistic="p90").statistic == "p90"
    assert monitoring.metric_disk_utilization().namespace == "/aws/sagemaker/Endpoints"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"latency_threshold_ms": 0}, "latency_threshold_ms"),
        ({"client_error_rate_threshold_percent": 150}, "client_error_rate_threshold_percent"),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, "datapoints_to_alarm"),
    ],
)
def test_endpoint_rejects_bad_thresholds(kwargs, message):
    stack = make_stack()
    with pytest.raises(ValueError, match=message):
        EndpointMonitoring(
            stack,
            "M",
            environment=ENV,
            project=PROJECT,
            model=MODEL,
            alarm_topic=alerts_topic(stack),
            **kwargs,
        )


def test_alarm_name_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        endpoint_alarm_name(ENV, PROJECT, MODEL, "cpu")


# ---- PlatformDashboard ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform() -> tuple[PlatformDashboard, Template]:
    stack = make_stack()
    trigger = imported_function(stack, "Trigger", PLATFORM.trigger_function)
    notifier = imported_function(stack, "Notifier", "mlops-dev-notifier")
    dashboard = PlatformDashboard(
        stack,
        "Platform",
        environment=ENV,
        mwaa_environment_name=PLATFORM.mwaa_environment,
        functions=[trigger],
        alarm_topic=alerts_topic(stack),
    )
    dashboard.add_function(notifier)
    return dashboard, Template.from_stack(stack)


def test_platform_dashboard_graphs_mwaa_dag_and_lambda_health(platform):
    dashboard, template = platform
    graphed = graphed_metrics(dashboard_body(template, "mlops-dev-platform"))
    mwaa = PLATFORM.mwaa_environment
    expected = {
        ("AmazonMWAA", "SchedulerHeartbeat", dims({"Function": "Scheduler", "Environment": mwaa}), "Sum"),
        ("AmazonMWAA", "QueuedTasks", dims({"Function": "Executor", "Environment": mwaa}), "Maximum"),
        ("AmazonMWAA", "RunningTasks", dims({"Function": "Executor", "Environment": mwaa}), "Maximum"),
    }
    for cluster in ("BaseWorker", "Scheduler"):
        for resource in ("CPUUtilization", "MemoryUtilization"):
            expected.add(("AWS/MWAA", resource, dims({"Cluster": cluster, "Environment": mwaa}), "Maximum"))
    for dag in (names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING):
        expected.add(
            (
                names.PIPELINE_METRICS_NAMESPACE,
                names.PIPELINE_FAILURE_METRIC,
                dims(names.pipeline_metric_dimensions(ENV, dag)),
                "Sum",
            )
        )
    for fn in (PLATFORM.trigger_function, "mlops-dev-notifier"):
        fn_dims = dims({"FunctionName": fn})
        expected |= {
            ("AWS/Lambda", "Errors", fn_dims, "Sum"),
            ("AWS/Lambda", "Throttles", fn_dims, "Sum"),
            ("AWS/Lambda", "Duration", fn_dims, "p99"),
        }
    assert expected <= graphed, sorted(expected - graphed)


def test_dag_failure_alarm_sums_every_platform_dag(platform):
    _, template = platform
    alarm = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmName": "mlops-dev-dag-task-failures"}}
    )
    props = next(iter(alarm.values()))["Properties"]
    assert props["AlarmActions"] == [PLATFORM.alerts_topic_arn]
    assert props["TreatMissingData"] == "notBreaching"
    dags = {
        {d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"]}["Dag"]
        for m in props["Metrics"]
        if "MetricStat" in m
    }
    assert dags == {names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING}
    namespaces = {m["MetricStat"]["Metric"]["Namespace"] for m in props["Metrics"] if "MetricStat" in m}
    assert namespaces == {names.PIPELINE_METRICS_NAMESPACE}


def test_lambda_errors_alarm_per_function_including_added_ones(platform):
    dashboard, template = platform
    assert len(dashboard.function_alarms) == 2
    for fn in (PLATFORM.trigger_function, "mlops-dev-notifier"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                # Named after the function when its name is known at synth.
                "AlarmName": f"mlops-dev-lambda-{fn}-errors",
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": fn}],
                "AlarmActions": [PLATFORM.alerts_topic_arn],
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "Threshold": 1,
            },
        )


def test_function_created_in_the_stack_is_labelled_by_construct_id_or_label():
    stack = make_stack()
    dashboard = PlatformDashboard(
        stack,
        "Platform",
        environment=ENV,
        mwaa_environment_name=PLATFORM.mwaa_environment,
        alarm_topic=alerts_topic(stack),
    )
    fn = lambda_.Function(
        stack,
        "DagTrigger",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
    )
    dashboard.add_function(fn)
    dashboard.add_function(fn, label="trigger-again")
    template = Template.from_stack(stack)
    function_id = stack.get_logical_id(fn.node.default_child)
    for name in ("mlops-dev-lambda-DagTrigger-errors", "mlops-dev-lambda-trigger-again-errors"):
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
            },
        )
    with pytest.raises(ValueError, match="label"):
        dashboard.add_function(fn, label="has spaces")


def test_missing_scheduler_heartbeat_is_an_alarm(platform):
    _, template = platform
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "mlops-dev-mwaa-scheduler-heartbeat",
            "Namespace": "AmazonMWAA",
            "MetricName": "SchedulerHeartbeat",
            "TreatMissingData": "breaching",
            "ComparisonOperator": "LessThanThreshold",
            "AlarmActions": [PLATFORM.alerts_topic_arn],
        },
    )


def test_platform_dashboard_rejects_unknown_mwaa_cluster(platform):
    dashboard, _ = platform
    with pytest.raises(ValueError, match="cluster"):
        dashboard.metric_container_utilization("CPUUtilization", "Worker")


# ---- whole-template checks -----------------------------------------------------------------------


def test_cdk_nag_and_cfn_lint_are_clean():
    app = App()
    stack = make_stack(app)
    topic = alerts_topic(stack)
    EndpointMonitoring(stack, "Endpoint", environment=ENV, project=PROJECT, model=MODEL, alarm_topic=topic)
    PlatformDashboard(
        stack,
        "Platform",
        environment=ENV,
        mwaa_environment_name=PLATFORM.mwaa_environment,
        alarm_topic=topic,
        functions=[imported_function(stack, "Trigger", PLATFORM.trigger_function)],
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    template = assembly.get_stack_artifact(stack.artifact_id).template
    matches = lint(json.dumps(template), regions=[REGION])
    assert [str(m) for m in matches] == []
