"""Local mode: the whole platform on one machine (issue 6).

A local AWS (``local_aws``) on 127.0.0.1, provisioned from the synthesized CDK app's ``local``
environment; a real Airflow 3 (scheduler, API server, DAG processor, SQLite) running the
unmodified DAGs; the model template's real train/evaluate/serve processes behind the local
SageMaker; the trigger Lambda's handler and the ``mlops`` CI tool called as in CI. Only endpoints
differ from AWS (boto3's ``AWS_ENDPOINT_URL*`` variables).

Entry point: ``python -m local_mode demo [--model P/M] [--model-repo PATH] [--project-file PATH]
[--fail] [--keep-running]`` (``make demo``, with MODEL, MODEL_REPO, PROJECT_FILE, FAIL).
"""
