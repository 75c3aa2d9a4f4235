"""What people read: SNS e-mail text and Slack Block Kit payloads."""

from __future__ import annotations

from mlops_dags import messages

VERDICT_PASS = {
    "passed": True,
    "metric": "f1",
    "greater_is_better": True,
    "candidate": 0.91,
    "threshold": 0.8,
    "production": 0.88,
    "max_regression": 0.0,
    "reasons": [],
}
VERDICT_FAIL = {
    **VERDICT_PASS,
    "passed": False,
    "candidate": 0.7,
    "reasons": ["f1=0.7 is below the threshold 0.8"],
}


def result(verdict, **overrides):
    kwargs = dict(
        environment="dev",
        project="fraud",
        model="scorer",
        run_name="fraud--scorer-v1-4-2-r3-20261125162000",
        model_version="1.4.2+r3",
        retraining=True,
        image_uri="123.dkr.ecr/fraud/scorer:1.4.2",
        training_data="s3://data/fraud/scorer/training/",
        metrics={"f1": verdict["candidate"], "precision": 0.9, "recall": 0.92, "accuracy": 0.95},
        confusion_matrix={"labels": ["benign", "malicious"], "matrix": [[90, 3], [4, 50]]},
        production_run="fraud--scorer-v1-4-2-r2-20261124000000",
        production_metrics={"f1": 0.88, "precision": 0.87},
        verdict=verdict,
        package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud--scorer/4",
        deployment_dag_id="mlops_deployment",
    )
    kwargs.update(overrides)
    return messages.training_result(**kwargs)


def block_texts(note) -> str:
    """Every text a Slack user sees in the blocks, joined."""
    texts = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                texts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(note.blocks)
    return "\n".join(texts)


def test_passed_candidate_says_how_to_deploy_with_a_copyable_conf():
    note = result(VERDICT_PASS)
    assert note.subject == "[mlops-dev] Retraining fraud/scorer 1.4.2+r3: ready to deploy"
    conf = '{"project": "fraud", "model": "scorer", "model_version": "1.4.2+r3"}'
    assert f"trigger the DAG mlops_deployment with the conf {conf}" in note.text
    assert conf in block_texts(note)
    # The comparison with production is shown per metric.
    assert "f1: 0.9100 (production 0.8800, +0.0300)" in note.text
    assert "precision: 0.9000 (production 0.8700, +0.0300)" in note.text
    assert "recall: 0.9200" in note.text


def test_rejected_candidate_gives_the_reason_and_no_deploy_instruction():
    note = result(VERDICT_FAIL)
    assert "REJECTED" in note.subject
    assert "f1=0.7 is below the threshold 0.8" in note.text
    assert "cannot be deployed" in note.text
    assert "trigger the DAG" not in note.text
    assert "mlops_deployment" not in block_texts(note)


def test_confusion_matrix_is_a_readable_table_in_the_email():
    lines = result(VERDICT_PASS).text.splitlines()
    start = lines.index("Confusion matrix (rows: actual, columns: predicted):")
    assert lines[start + 1].split() == ["benign", "malicious"]
    assert lines[start + 2].split() == ["benign", "90", "3"]
    assert lines[start + 3].split() == ["malicious", "4", "50"]


def test_confusion_matrix_appears_in_slack_as_in_the_email():
    note = result(VERDICT_PASS)
    email = note.text.splitlines()
    table = email[email.index("Confusion matrix (rows: actual, columns: predicted):") + 1 :][:3]
    [block] = [b for b in note.blocks if "Confusion matrix" in b.get("text", {}).get("text", "")]
    # The same aligned rows, in a code block so Slack keeps the columns.
    assert (
        block["text"]["text"]
        == "*Confusion matrix (rows: actual, columns: predicted):*\n```" + "\n".join(table) + "```"
    )
    assert not [b for b in result(VERDICT_PASS, confusion_matrix=None).blocks if "Confusion" in str(b)]


def test_first_training_names_no_production_model():
    note = result(VERDICT_PASS, retraining=False, production_run=None, production_metrics=None)
    assert note.subject.startswith("[mlops-dev] Training fraud/scorer")
    assert "In production:   nothing (first deployment)" in note.text
    assert "f1: 0.9100\n" in note.text + "\n"


def test_slack_blocks_respect_block_kit_limits():
    many = {f"metric{i}": i / 10 for i in range(23)}
    note = result(VERDICT_PASS, metrics=many)
    for block in note.blocks:
        assert block["type"] in {"header", "section", "context", "actions"}
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10
    assert sum(len(b.get("fields", [])) for b in note.blocks) == 23


def test_task_failure_carries_task_error_and_log_link_and_a_valid_sns_subject():
    error = "AirflowFailException: training job x ended Failed: " + "ClientError: boom " * 300
    note = messages.task_failed(
        environment="prod",
        dag_id="mlops_training_evaluation",
        task_id="train",
        run_id="manual__1",
        try_number=2,
        error=error,
        log_url="http://airflow/log?x=1",
        subject_of_run="fraud/scorer",
    )
    assert note.sns_subject == "[mlops-prod] FAILED mlops_training_evaluation.train fraud/scorer"
    assert len(note.sns_subject) <= 100
    assert error in note.text  # e-mail keeps the whole error
    assert "Log:       http://airflow/log?x=1" in note.text
    section = next(b for b in note.blocks if b["type"] == "section" and "text" in b)
    assert len(section["text"]["text"]) <= 3000
    assert note.blocks[-1]["elements"][0]["url"] == "http://airflow/log?x=1"


def test_sns_subject_is_ascii_single_line_and_at_most_100_characters():
    note = messages.Notification(subject="🚀 déployé\n" + "x" * 200, text="")
    assert len(note.sns_subject) == 100
    assert note.sns_subject.isascii() and "\n" not in note.sns_subject


def test_deployment_message_links_the_dashboard_and_names_the_previous_version():
    note = messages.deployment_succeeded(
        environment="dev",
        project="fraud",
        model="scorer",
        endpoint_name="fraud--scorer",
        model_version="1.4.2+r3",
        run_name="fraud--scorer-v1-4-2-r3-20261125162000",
        previous_run="fraud--scorer-v1-4-2-r2-20261124000000",
        dashboard_url="https://us-east-1.console.aws.amazon.com/cloudwatch/home#dashboards/dashboard/d",
        smoke_test="passed",
    )
    assert note.subject == "[mlops-dev] Deployed fraud/scorer 1.4.2+r3 to fraud--scorer"
    assert "updated from fraud--scorer-v1-4-2-r2-20261124000000" in note.text
    assert note.blocks[-1]["elements"][0]["url"].endswith("#dashboards/dashboard/d")


def test_redeploying_the_serving_version_says_nothing_changed():
    note = messages.deployment_succeeded(
        environment="dev",
        project="fraud",
        model="scorer",
        endpoint_name="fraud--scorer",
        model_version="1.4.2+r3",
        run_name="fraud--scorer-v1-4-2-r3-20261125162000",
        previous_run=None,
        dashboard_url="https://example.invalid/d",
        smoke_test="passed",
        unchanged=True,
    )
    assert "(it was already serving: nothing changed)" in note.text
    assert "created" not in note.text


def test_dag_run_failure_names_the_failed_tasks_the_error_and_links_log_and_run():
    note = messages.dag_run_failed(
        environment="prod",
        dag_id="mlops_training_evaluation",
        run_id="manual__1",
        failed_tasks=["train", "publish_metrics"],
        error="a task failed (task_failure)",
        log_url="http://airflow/dags/mlops_training_evaluation/runs/manual__1/tasks/train?try_number=1",
        run_url="http://airflow/dags/mlops_training_evaluation/runs/manual__1",
        subject_of_run="fraud/scorer",
    )
    assert note.sns_subject == "[mlops-prod] Run of mlops_training_evaluation failed fraud/scorer"
    assert "Failed tasks: train, publish_metrics" in note.text
    assert "Error:        a task failed (task_failure)" in note.text
    assert (
        "Log:          http://airflow/dags/mlops_training_evaluation/runs/manual__1/tasks/train?try_number=1"
        in note.text
    )
    assert "Run:          http://airflow/dags/mlops_training_evaluation/runs/manual__1" in note.text
    texts = block_texts(note)
    assert "train, publish_metrics" in texts and "a task failed (task_failure)" in texts
    [actions] = [b for b in note.blocks if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        ("View log", "http://airflow/dags/mlops_training_evaluation/runs/manual__1/tasks/train?try_number=1"),
        ("Open run", "http://airflow/dags/mlops_training_evaluation/runs/manual__1"),
    ]


def test_dag_run_failure_without_tasks_or_links_says_so_and_has_no_buttons():
    note = messages.dag_run_failed(
        environment="dev",
        dag_id="mlops_retraining",
        run_id="scheduled__2026-01-02",
        failed_tasks=[],
        error="the run exceeded its dagrun_timeout (timed_out)",
        log_url=None,
        run_url=None,
        subject_of_run=None,
    )
    assert "Failed tasks: none recorded" in note.text
    assert "Log:          n/a" in note.text and "Run:          n/a" in note.text
    assert "timed_out" in block_texts(note)
    assert not [b for b in note.blocks if b["type"] == "actions"]
