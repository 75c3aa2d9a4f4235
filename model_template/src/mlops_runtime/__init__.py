"""The platform side of the image: SageMaker's bring-your-own-container contract.

Model teams normally do not edit this package; their model lives in ``team_model``. Entry points:
``train`` (training job), ``evaluate`` (processing job) and ``serve`` (endpoint), also reachable as
``python -m mlops_runtime train|evaluate|serve``.
"""
