"""Names of an environment's shared resources, as other stacks, the DAGs and the CLI find them."""

import pytest

from mlops_core.platform_names import PlatformNames


@pytest.mark.parametrize(
    ("region", "arn"),
    [
        ("eu-west-1", "arn:aws:sns:eu-west-1:111111111111:mlops-dev-alerts"),
        ("cn-north-1", "arn:aws-cn:sns:cn-north-1:111111111111:mlops-dev-alerts"),
        ("us-gov-west-1", "arn:aws-us-gov:sns:us-gov-west-1:111111111111:mlops-dev-alerts"),
    ],
)
def test_alerts_topic_arn_is_in_the_regions_partition(region, arn):
    assert PlatformNames(environment="dev", account="111111111111", region=region).alerts_topic_arn == arn


def test_bucket_names_are_unique_per_account_and_region():
    names = PlatformNames(environment="dev", account="111111111111", region="eu-west-1")
    assert names.data_bucket == "mlops-dev-data-111111111111-eu-west-1"
    assert names.airflow_bucket == "airflow-mlops-dev-111111111111-eu-west-1"


def test_invalid_environment_names_are_refused():
    with pytest.raises(ValueError, match="environment='Dev' is invalid"):
        PlatformNames(environment="Dev", account="111111111111", region="eu-west-1")
