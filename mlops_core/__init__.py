"""Conventions shared by every part of the platform.

The CDK constructs, the Airflow DAGs, the trigger Lambda and the CI tool all import this package,
so a name, a path or a version rule is defined once. It depends only on the standard library,
``semver`` and ``pydantic`` because it is shipped inside the MWAA DAG bundle and the Lambda asset.
"""
