"""A local AWS for the pipeline: moto server plus a realistic local SageMaker (see README.md).

Importing this package needs only the standard library (the Airflow virtualenvs import it to
start the server as a subprocess of the main virtualenv's Python).
"""

from local_aws.launcher import LocalAws, LocalAwsError, default_python

__all__ = ["LocalAws", "LocalAwsError", "default_python"]
