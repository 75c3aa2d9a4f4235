"""CloudWatch dashboards and alarms: one small construct per model endpoint, one per platform.

``EndpointMonitoring`` is instantiated once per model, so it is deliberately small (4 alarms and
1 dashboard): a 1,000-model platform packs 20-40 models into a stack under CloudFormation's
500-resource limit. ``PlatformDashboard`` exists once per environment.

Metric names and dimensions:

* SageMaker endpoint invocation metrics: namespace ``AWS/SageMaker``, dimensions ``EndpointName`` +
  ``VariantName``. ``ModelLatency`` and ``OverheadLatency`` are published in **microseconds**.
* Endpoint instance metrics (CPU, memory, disk): namespace ``/aws/sagemaker/Endpoints``, same
  dimensions. CPUUtilization is summed over cores (up to 100 % x vCPUs).
* MWAA: Apache Airflow metrics (scheduler heartbeat, executor queued/running tasks) are in the
  ``AmazonMWAA`` namespace with dimensions ``Function`` + ``Environment``; container metrics
  (CPU/memory of BaseWorker, AdditionalWorker, Scheduler, WebServer) are in ``AWS/MWAA`` with
  dimensions ``Cluster`` + ``Environment``.
* Evaluation metrics and DAG failures: the namespaces the DAGs publish to (``mlops_core.names``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_core import names

# The Deployment DAG creates every endpoint with a single production variant of this name; blue/green
# updates replace the fleet behind the same variant, so dashboards and rollback alarms stay valid.
VARIANT_NAME = names.ENDPOINT_VARIANT_NAME

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
ENDPOINT_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
MWAA_AIRFLOW_NAMESPACE = "AmazonMWAA"
MWAA_CONTAINER_NAMESPACE = "AWS/MWAA"
MWAA_CLUSTERS = ("Scheduler", "BaseWorker", "AdditionalWorker", "WebServer")

# SageMaker publishes endpoint metrics every minute; one-minute alarms let deployment guardrails
# roll back within the baking period instead of after it.
ENDPOINT_PERIOD = Duration.minutes(1)
DASHBOARD_PERIOD = Duration.minutes(5)

LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

ALARM_KINDS = ("5xx-errors", "4xx-error-rate", "model-latency-p99", "memory-utilization")


def alarm_name_prefix(environment: str) -> str:
    """Every alarm of an environment starts with this: the alerts topic lets CloudWatch publish for
    these alarms only (``Notifications(alarm_name_prefix=...)``)."""
    return f"mlops-{environment}-"


def endpoint_alarm_name(environment: str, project: str, model: str, kind: str) -> str:
    """Deterministic alarm name: the pipeline configuration lists these as rollback alarms."""
    if kind not in ALARM_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {ALARM_KINDS}")
    return f"{names.dashboard_name(environment, project, model)}-{kind}"


def platform_dashboard_name(environment: str) -> str:
    return f"mlops-{environment}-platform"


class EndpointMonitoring(Construct):
    """Dashboard and alarms of one model's SageMaker endpoint.

    The endpoint itself is created later by the Deployment DAG under ``names.endpoint_name``; the
    metrics below are keyed by that name, so they start filling as soon as the endpoint exists.
    Alarms treat missing data as not breaching: no datapoint means no traffic, not an outage.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        project: str,
        model: str,
        alarm_topic: sns.ITopic,
        model_metrics: Sequence[str] = ("f1",),
        latency_threshold_ms: float = 1000.0,
        server_errors_threshold: int = 1,
        client_error_rate_threshold_percent: float = 5.0,
        memory_threshold_percent: float = 90.0,
        evaluation_periods: int = 3,
        datapoints_to_alarm: int = 2,
    ) -> None:
        super().__init__(scope, id)
        if latency_threshold_ms <= 0:
            raise ValueError(f"latency_threshold_ms={latency_threshold_ms} must be > 0")
        if not 0 < client_error_rate_threshold_percent <= 100:
            raise ValueError(
                f"client_error_rate_threshold_percent={client_error_rate_threshold_percent} must be in (0, 100]"
            )
        if not 0 < datapoints_to_alarm <= evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm={datapoints_to_alarm} must be between 1 and "
                f"evaluation_periods={evaluation_periods}"
            )
        self.environment = environment
        self.project = project
        self.model = model
        self.endpoint_name = names.endpoint_name(project, model)
        self.model_metrics = tuple(model_metrics)
        self._dimensions = {"EndpointName": self.endpoint_name, "VariantName": VARIANT_NAME}
        # ModelLatency is published in microseconds.
        self._latency_threshold_us = latency_threshold_ms * 1000

        def alarm_props(kind: str) -> dict:
            return {
                "alarm_name": endpoint_alarm_name(environment, project, model, kind),
                "evaluation_periods": evaluation_periods,
                "datapoints_to_alarm": datapoints_to_alarm,
                "treat_missing_data": cw.TreatMissingData.NOT_BREACHING,
            }

        self.server_errors_alarm = cw.Alarm(
            self,
            "ServerErrors",
            metric=self.metric_5xx_errors(period=ENDPOINT_PERIOD),
            threshold=server_errors_threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            alarm_description=f"{self.endpoint_name}: the model container or SageMaker returned 5xx errors",
            **alarm_props("5xx-errors"),
        )
        # A rate, not a count: a busy endpoint always sees some bad requests, but a new model version
        # that rejects the input contract (ModelError is counted as 4xx) shows up as a jump in the rate.
        self.client_error_rate_alarm = cw.Alarm(
            self,
            "ClientErrorRate",
            metric=self.metric_4xx_error_rate(period=ENDPOINT_PERIOD),
            threshold=client_error_rate_threshold_percent,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            alarm_description=f"{self.endpoint_name}: more than {client_error_rate_threshold_percent}% of "
            "invocations returned 4xx errors",
            **alarm_props("4xx-error-rate"),
        )
        self.latency_alarm = cw.Alarm(
            self,
            "ModelLatencyP99",
            metric=self.metric_model_latency(statistic="p99", period=ENDPOINT_PERIOD),
            threshold=self._latency_threshold_us,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            alarm_description=f"{self.endpoint_name}: p99 model latency above {latency_threshold_ms} ms",
            **alarm_props("model-latency-p99"),
        )
        # Memory exhaustion kills the model server (then 5xx) without warning; alarm before that.
        self.memory_alarm = cw.Alarm(
            self,
            "MemoryUtilization",
            metric=self.metric_memory_utilization(statistic="Maximum", period=ENDPOINT_PERIOD),
            threshold=memory_threshold_percent,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            alarm_description=f"{self.endpoint_name}: instance memory above {memory_threshold_percent}%",
            **alarm_props("memory-utilization"),
        )
        self.alarms: list[cw.Alarm] = [
            self.server_errors_alarm,
            self.client_error_rate_alarm,
            self.latency_alarm,
            self.memory_alarm,
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
            alarm.add_ok_action(cw_actions.SnsAction(alarm_topic))

        # Memory grows with load as well as with a bad model, so it alerts but does not roll back.
        self.rollback_alarm_names: list[str] = [
            endpoint_alarm_name(environment, project, model, kind)
            for kind in ("5xx-errors", "4xx-error-rate", "model-latency-p99")
        ]

        self.dashboard_name = names.dashboard_name(environment, project, model)
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.dashboard_name,
            default_interval=Duration.hours(24),
        )
        self._add_widgets()

    # ---- drift -----------------------------------------------------------------------------------

    def add_drift_alarm(self, drift_topic: sns.ITopic, *, check_interval_hours: int) -> cw.Alarm:
        """The drift alarm (``names.drift_alarm_name``): the newest check found a drifted feature.

        One period per check interval, so each check's ``DriftedFeatures`` datapoint is evaluated
        once; an inconclusive check publishes none, which is not breaching. Its only action is the
        project's drift topic (the trigger Lambda's alias of the project starts the retraining); the
        dashboard shows its state and the drift metrics."""
        period = Duration.hours(check_interval_hours)
        self.drift_alarm = cw.Alarm(
            self,
            "Drift",
            alarm_name=names.drift_alarm_name(self.environment, self.project, self.model),
            metric=self.metric_drifted_features(period=period),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{self.endpoint_name}: the drift check found features beyond the threshold; "
            "starts a drift retraining (at most once per cool-down)",
        )
        self.drift_alarm.add_alarm_action(cw_actions.SnsAction(drift_topic))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Drifted features (per drift check)",
                left=[self.metric_drifted_features(period=period)],
                left_annotations=[cw.HorizontalAnnotation(value=1, label="drift alarm")],
                width=8,
            ),
            cw.GraphWidget(
                title="Feature drift (distance from the baseline)",
                left=[self.feature_drift_search(period=period)],
                width=8,
            ),
            cw.AlarmStatusWidget(title="Drift", alarms=[self.drift_alarm], width=8),
        )
        return self.drift_alarm

    def metric_drifted_features(self, *, period: Duration | None = None) -> cw.Metric:
        return cw.Metric(
            namespace=names.MODEL_METRICS_NAMESPACE,
            metric_name=names.DRIFTED_FEATURES_METRIC,
            dimensions_map=names.model_metric_dimensions(self.environment, self.project, self.model),
            statistic="Maximum",
            period=period or DASHBOARD_PERIOD,
        )

    def feature_drift_search(self, *, period: Duration | None = None) -> cw.MathExpression:
        """One line per feature (features are the data's columns, unknown at synth): Model
        Monitor's per-feature metrics of this endpoint's schedule, by a CloudWatch search."""
        seconds = int((period or DASHBOARD_PERIOD).to_seconds())
        schedule = names.monitoring_schedule_name(self.project, self.model)
        # Unquoted: a partial (token) match on every feature_baseline_drift_<feature> metric.
        prefix = names.feature_drift_metric("").rstrip("_")
        return cw.MathExpression(
            expression=(
                f"SEARCH('{{{names.DRIFT_METRICS_NAMESPACE},Endpoint,MonitoringSchedule}} "
                f'Endpoint="{self.endpoint_name}" MonitoringSchedule="{schedule}" '
                f"MetricName={prefix}', 'Maximum', {seconds})"
            ),
            using_metrics={},
            label="",
            period=period or DASHBOARD_PERIOD,
        )

    # ---- metrics -------------------------------------------------------------------------------

    def _metric(
        self,
        namespace: str,
        metric_name: str,
        statistic: str,
        period: Duration | None,
        label: str | None = None,
    ) -> cw.Metric:
        return cw.Metric(
            namespace=namespace,
            metric_name=metric_name,
            dimensions_map=self._dimensions,
            statistic=statistic,
            period=period or DASHBOARD_PERIOD,
            label=label,
        )

    def metric_invocations(self, *, period: Duration | None = None) -> cw.Metric:
        return self._metric(SAGEMAKER_NAMESPACE, "Invocations", "Sum", period)

    def metric_invocations_per_instance(self, *, period: Duration | None = None) -> cw.Metric:
        return self._metric(SAGEMAKER_NAMESPACE, "InvocationsPerInstance", "Sum", period)

    def metric_model_latency(self, *, statistic: str = "p99", period: Duration | None = None) -> cw.Metric:
        """Time the model container took to respond, in microseconds."""
        return self._metric(SAGEMAKER_NAMESPACE, "ModelLatency", statistic, period)

    def metric_overhead_latency(self, *, statistic: str = "p99", period: Duration | None = None) -> cw.Metric:
        """Time SageMaker added on top of the model, in microseconds."""
        return self._metric(SAGEMAKER_NAMESPACE, "OverheadLatency", statistic, period)

    def metric_4xx_errors(self, *, period: Duration | None = None) -> cw.Metric:
        return self._metric(SAGEMAKER_NAMESPACE, "Invocation4XXErrors", "Sum", period)

    def metric_5xx_errors(self, *, period: Duration | None = None) -> cw.Metric:
        return self._metric(SAGEMAKER_NAMESPACE, "Invocation5XXErrors", "Sum", period)

    def metric_4xx_error_rate(self, *, period: Duration | None = None) -> cw.MathExpression:
        """Percentage of invocations answered with 4xx; 0 when there is traffic but no errors."""
        return cw.MathExpression(
            # IF(...) yields no value when there are no invocations at all: missing data, not 0 %.
            expression="IF(invocations > 0, 100 * FILL(errors4xx, 0) / invocations, 0)",
            using_metrics={
                "invocations": self.metric_invocations(period=period),
                "errors4xx": self.metric_4xx_errors(period=period),
            },
            label="4xx error rate (%)",
            period=period or DASHBOARD_PERIOD,
        )

    def variant_search(self, metric: str, statistic: str) -> cw.MathExpression:
        """``metric`` of every variant of the endpoint (one line each), by a CloudWatch search."""
        return cw.MathExpression(
            expression=(
                f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} EndpointName="{self.endpoint_name}" '
                f"MetricName=\"{metric}\"', '{statistic}', 60)"
            ),
            using_metrics={},
            label="",
            period=Duration.minutes(1),
        )

    def metric_cpu_utilization(self, *, statistic: str = "Average", period: Duration | None = None) -> cw.Metric:
        return self._metric(ENDPOINT_INSTANCE_NAMESPACE, "CPUUtilization", statistic, period)

    def metric_memory_utilization(self, *, statistic: str = "Average", period: Duration | None = None) -> cw.Metric:
        return self._metric(ENDPOINT_INSTANCE_NAMESPACE, "MemoryUtilization", statistic, period)

    def metric_disk_utilization(self, *, statistic: str = "Average", period: Duration | None = None) -> cw.Metric:
        return self._metric(ENDPOINT_INSTANCE_NAMESPACE, "DiskUtilization", statistic, period)

    def metric_model_evaluation(self, metric: str, *, period: Duration | None = None) -> cw.Metric:
        """An evaluation metric ("f1", "mse", ...) the training DAG publishes for each run."""
        return cw.Metric(
            namespace=names.MODEL_METRICS_NAMESPACE,
            metric_name=metric,
            dimensions_map=names.model_metric_dimensions(self.environment, self.project, self.model),
            # Runs are rare; the daily maximum keeps one point per day visible on a 2-week graph.
            statistic="Maximum",
            period=period or Duration.days(1),
        )

    # ---- dashboard -----------------------------------------------------------------------------

    def _add_widgets(self) -> None:
        width = 8
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# {self.project}/{self.model} ({self.environment})\n"
                f"Endpoint `{self.endpoint_name}`, variant `{VARIANT_NAME}`. Latencies in microseconds.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Invocations", left=[self.metric_invocations()], width=width),
            cw.GraphWidget(
                title="Invocations per instance", left=[self.metric_invocations_per_instance()], width=width
            ),
            cw.GraphWidget(
                title="Errors",
                left=[self.metric_4xx_errors(), self.metric_5xx_errors()],
                right=[self.metric_4xx_error_rate()],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Model latency (us)",
                left=[self.metric_model_latency(statistic=s).with_(label=f"ModelLatency {s}") for s in ("p50", "p99")],
                left_annotations=[
                    cw.HorizontalAnnotation(value=self._latency_threshold_us, label="p99 alarm threshold")
                ],
                width=width,
            ),
            cw.GraphWidget(
                title="Overhead latency (us)",
                left=[
                    self.metric_overhead_latency(statistic=s).with_(label=f"OverheadLatency {s}")
                    for s in ("p50", "p99")
                ],
                width=width,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=width),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="CPU utilization (% over all cores)", left=[self.metric_cpu_utilization()], width=width
            ),
            cw.GraphWidget(title="Memory utilization (%)", left=[self.metric_memory_utilization()], width=width),
            cw.GraphWidget(title="Disk utilization (%)", left=[self.metric_disk_utilization()], width=width),
        )
        # A shadow trial or an A/B test (mlops_dags.strategies) adds a variant beside AllTraffic:
        # one line per variant, whatever its name, found by a search over the endpoint's variants.
        self.dashboard.add_widgets(
            *(
                cw.GraphWidget(
                    title=f"{title} per variant (shadow and A/B trials)",
                    left=[self.variant_search(metric, statistic)],
                    width=width,
                )
                for title, metric, statistic in (
                    ("Invocations", "Invocations", "Sum"),
                    ("5xx errors", "Invocation5XXErrors", "Sum"),
                    ("Model latency p99 (us)", "ModelLatency", "p99"),
                )
            )
        )
        if self.model_metrics:
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="Evaluation metrics (per training run)",
                    left=[self.metric_model_evaluation(m) for m in self.model_metrics],
                    width=24,
                )
            )


class PlatformDashboard(Construct):
    """One dashboard per environment: MWAA health, DAG failures, Lambda errors, with alarms."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        mwaa_environment_name: str,
        alarm_topic: sns.ITopic,
        functions: Sequence[lambda_.IFunction] = (),
        dag_ids: Sequence[str] = (names.DAG_TRAINING, names.DAG_DEPLOYMENT, names.DAG_RETRAINING),
        dag_failures_threshold: int = 1,
    ) -> None:
        super().__init__(scope, id)
        if not dag_ids:
            raise ValueError("dag_ids must name at least one DAG")
        # A metric-math alarm may reference at most 10 metrics.
        if len(dag_ids) > 10:
            raise ValueError(f"dag_ids has {len(dag_ids)} entries; at most 10 fit one alarm")
        self.environment = environment
        self.mwaa_environment_name = mwaa_environment_name
        self.dag_ids = tuple(dag_ids)
        self._topic_action = cw_actions.SnsAction(alarm_topic)
        self.functions: list[lambda_.IFunction] = []
        self.function_alarms: list[cw.Alarm] = []

        self.dashboard_name = platform_dashboard_name(environment)
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=self.dashboard_name, default_interval=Duration.hours(24)
        )

        # Missing heartbeats mean the scheduler is down: unlike traffic metrics, missing is breaching.
        self.scheduler_heartbeat_alarm = cw.Alarm(
            self,
            "SchedulerHeartbeat",
            alarm_name=f"{alarm_name_prefix(environment)}mwaa-scheduler-heartbeat",
            metric=self.metric_scheduler_heartbeat(period=Duration.minutes(5)),
            threshold=1,
            comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            treat_missing_data=cw.TreatMissingData.BREACHING,
            alarm_description=f"MWAA {mwaa_environment_name}: no scheduler heartbeat for 15 minutes",
        )
        self.dag_failures_alarm = cw.Alarm(
            self,
            "DagFailures",
            alarm_name=f"{alarm_name_prefix(environment)}dag-task-failures",
            metric=self.metric_dag_failures(period=Duration.minutes(5)),
            threshold=dag_failures_threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # The DAGs publish failures only when they happen.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{environment}: platform DAG tasks failed",
        )
        for alarm in (self.scheduler_heartbeat_alarm, self.dag_failures_alarm):
            alarm.add_alarm_action(self._topic_action)
            alarm.add_ok_action(self._topic_action)

        self._add_mwaa_widgets()
        for fn in functions:
            self.add_function(fn)

    # ---- metrics -------------------------------------------------------------------------------

    def _airflow_metric(self, metric_name: str, function: str, statistic: str, period: Duration | None) -> cw.Metric:
        return cw.Metric(
            namespace=MWAA_AIRFLOW_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"Function": function, "Environment": self.mwaa_environment_name},
            statistic=statistic,
            period=period or DASHBOARD_PERIOD,
        )

    def metric_scheduler_heartbeat(self, *, period: Duration | None = None) -> cw.Metric:
        return self._airflow_metric("SchedulerHeartbeat", "Scheduler", "Sum", period)

    def metric_queued_tasks(self, *, period: Duration | None = None) -> cw.Metric:
        return self._airflow_metric("QueuedTasks", "Executor", "Maximum", period)

    def metric_running_tasks(self, *, period: Duration | None = None) -> cw.Metric:
        return self._airflow_metric("RunningTasks", "Executor", "Maximum", period)

    def metric_container_utilization(self, resource: str, cluster: str, *, period: Duration | None = None) -> cw.Metric:
        """``CPUUtilization`` or ``MemoryUtilization`` of one MWAA container group (``MWAA_CLUSTERS``)."""
        if resource not in ("CPUUtilization", "MemoryUtilization"):
            raise ValueError(f"resource={resource!r} must be CPUUtilization or MemoryUtilization")
        if cluster not in MWAA_CLUSTERS:
            raise ValueError(f"cluster={cluster!r} must be one of {MWAA_CLUSTERS}")
        return cw.Metric(
            namespace=MWAA_CONTAINER_NAMESPACE,
            metric_name=resource,
            dimensions_map={"Cluster": cluster, "Environment": self.mwaa_environment_name},
            statistic="Maximum",
            period=period or DASHBOARD_PERIOD,
            label=f"{cluster} {resource}",
        )

    def metric_dag_task_failures(self, dag_id: str, *, period: Duration | None = None) -> cw.Metric:
        return cw.Metric(
            namespace=names.PIPELINE_METRICS_NAMESPACE,
            metric_name=names.PIPELINE_FAILURE_METRIC,
            dimensions_map=names.pipeline_metric_dimensions(self.environment, dag_id),
            statistic="Sum",
            period=period or DASHBOARD_PERIOD,
            label=dag_id,
        )

    def metric_dag_failures(self, *, period: Duration | None = None) -> cw.MathExpression:
        """Task failures summed over the platform DAGs."""
        using = {f"dag{i}": self.metric_dag_task_failures(d, period=period) for i, d in enumerate(self.dag_ids)}
        return cw.MathExpression(
            expression=" + ".join(f"FILL({k}, 0)" for k in using),
            using_metrics=using,
            label="DAG task failures",
            period=period or DASHBOARD_PERIOD,
        )

    # ---- functions -----------------------------------------------------------------------------

    def add_function(self, fn: lambda_.IFunction, *, label: str | None = None, errors_threshold: int = 1) -> cw.Alarm:
        """Add a function's errors, throttles and duration to the dashboard, and an errors alarm.

        ``label`` names the widgets and the alarm (``mlops-<env>-lambda-<label>-errors``); it defaults
        to the function's name when that is known at synth, else to its construct id.
        """
        if label is None:
            label = fn.node.id if Token.is_unresolved(fn.function_name) else fn.function_name
        if not LABEL_PATTERN.fullmatch(label):
            raise ValueError(f"label={label!r} must match {LABEL_PATTERN.pattern} (it goes into an alarm name)")
        alarm = cw.Alarm(
            self,
            f"LambdaErrors{label}",
            alarm_name=f"{alarm_name_prefix(self.environment)}lambda-{label}-errors",
            metric=fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            threshold=errors_threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # No invocations means no Errors datapoint.
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Lambda function {label} ({self.environment}) raised errors",
        )
        alarm.add_alarm_action(self._topic_action)
        alarm.add_ok_action(self._topic_action)
        self.functions.append(fn)
        self.function_alarms.append(alarm)
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title=f"Lambda {label}: errors and throttles",
                left=[fn.metric_errors(statistic="Sum"), fn.metric_throttles(statistic="Sum")],
                width=12,
            ),
            cw.GraphWidget(
                title=f"Lambda {label}: duration (ms)",
                left=[fn.metric_duration(statistic="p50"), fn.metric_duration(statistic="p99")],
                width=12,
            ),
        )
        return alarm

    # ---- dashboard -----------------------------------------------------------------------------

    def _add_mwaa_widgets(self) -> None:
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# MLOps platform ({self.environment})\nMWAA environment `{self.mwaa_environment_name}`",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Scheduler heartbeat", left=[self.metric_scheduler_heartbeat()], width=8),
            cw.GraphWidget(
                title="Queued / running tasks",
                left=[self.metric_queued_tasks(), self.metric_running_tasks()],
                width=8,
            ),
            cw.AlarmStatusWidget(
                title="Platform alarms",
                alarms=[self.scheduler_heartbeat_alarm, self.dag_failures_alarm],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="MWAA CPU utilization (%)",
                left=[self.metric_container_utilization("CPUUtilization", c) for c in MWAA_CLUSTERS],
                width=12,
            ),
            cw.GraphWidget(
                title="MWAA memory utilization (%)",
                left=[self.metric_container_utilization("MemoryUtilization", c) for c in MWAA_CLUSTERS],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="DAG task failures",
                left=[self.metric_dag_task_failures(d) for d in self.dag_ids],
                width=24,
            )
        )
