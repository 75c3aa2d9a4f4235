"""The documents drift monitoring passes between its parts, validated on both sides.

- ``MonitoringSchedule``: what the Deployment DAG records for a serving endpoint
  (``names.monitoring_schedule_uri``) and the Drift Check DAG reads to know what to check, against
  which baseline, and how often. Model Monitor's own schedules are not used (SageMaker's
  documentation: Model Monitor is "no longer open to new customers"): the check runs the model's
  own image as a Model Monitor bring-your-own container, started by Airflow.
- ``DriftCheckSummary``: the newest check's result (``names.drift_summary_uri``), written by the
  Drift Check DAG and read by the trigger Lambda when the model's drift alarm fires: which features
  drifted, their baseline and current statistics, where the report is, what was serving, and the
  cool-down that bounds how often drift starts a retraining.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class _Document(BaseModel):
    # extra="ignore": a newer writer may add fields an older reader (a deployed Lambda) skips.
    model_config = ConfigDict(extra="ignore", frozen=True)


class MonitoringSchedule(_Document):
    schema_version: int = SCHEMA_VERSION
    project: str
    model: str
    endpoint_name: str
    schedule_name: str
    # The serving model: its image runs the check, its run's baseline is the reference.
    model_version: str
    run_name: str
    image_uri: str
    baseline_statistics_uri: str
    baseline_constraints_uri: str
    check_interval_hours: int
    created_at: datetime


class FeatureDrift(_Document):
    name: str
    # Model Monitor's distribution distance between the baseline and the checked traffic, and the
    # comparison threshold it exceeded.
    distance: float
    threshold: float
    # Summary statistics of the feature (e.g. mean, stddev, min, max for a number; the most frequent
    # values' shares for a string), as Model Monitor's statistics.json has them.
    baseline: dict[str, float | str]
    current: dict[str, float | str]


class DriftCheckSummary(_Document):
    schema_version: int = SCHEMA_VERSION
    project: str
    model: str
    endpoint_name: str
    schedule_name: str
    check_name: str
    checked_at: datetime
    window_start: datetime
    window_end: datetime
    records: int
    # Serving model the traffic was compared with (a drift retraining trains this image again).
    model_version: str
    image_tag: str
    drifted: list[FeatureDrift] = Field(default_factory=list)
    # False when fewer than the configured minimum of records were captured: no verdict.
    conclusive: bool = True
    report_uri: str
    violations_uri: str
    cool_down_hours: int

    @property
    def drifted_features(self) -> list[str]:
        return [feature.name for feature in self.drifted]
