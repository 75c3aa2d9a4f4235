import pytest
from synth_helpers import new_stack, template_of

from mlops_constructs.model_repository import ModelRepository


def test_repository_is_named_project_slash_model_scanned_and_immutable():
    stack = new_stack()
    ModelRepository(stack, "Repo", project="endpoint-security", model="process-classifier")
    template = template_of(stack)
    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "endpoint-security/process-classifier",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
        },
    )
    repository = next(iter(template.find_resources("AWS::ECR::Repository").values()))
    # Kept when the stack goes; removed (still empty) when the deploy that created it rolls back.
    assert repository["DeletionPolicy"] == "RetainExceptOnCreate" and repository["UpdateReplacePolicy"] == "Retain"
    rules = repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"]
    assert '"tagStatus":"untagged"' in rules
    # Release tags (x.y.z) are never expired: a serving model must stay pullable.
    assert '"tagPatternList":["*-*"]' in rules


@pytest.mark.parametrize("project,model", [("Endpoint", "m"), ("p", "Model_A"), ("p", "a--b"), ("p", "-a")])
def test_invalid_names_fail_with_field_and_value(project, model):
    with pytest.raises(ValueError, match=r"(project|model)='"):
        ModelRepository(new_stack(), "Repo", project=project, model=model)
