"""Code shared by the platform's DAG files (a plain package: DAG files never import each other).

Modules here keep their heavy imports (boto3, slack_sdk, pydantic models) inside functions, so
parsing a DAG file costs only Airflow itself plus these small modules.
"""
