from aws_cdk import aws_kms as kms
from synth_helpers import new_stack, template_of

from mlops_constructs.network import MwaaNetwork


def test_two_private_subnets_in_two_zones_and_flow_logs():
    stack = new_stack()
    network = MwaaNetwork(
        stack,
        "Net",
        cidr="10.40.0.0/16",
        availability_zones=["eu-west-1a", "eu-west-1b"],
        flow_log_key=kms.Key(stack, "Key", enable_key_rotation=True),
    )
    assert len(network.private_subnets) == 2
    assert {s.availability_zone for s in network.private_subnets} == {"eu-west-1a", "eu-west-1b"}
    template = template_of(stack)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 365, "KmsKeyId": {"Fn::GetAtt": ["Key961B73FD", "Arn"]}}
    )
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})
