import fnmatch
import json

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
    rules = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [rule["selection"]["tagStatus"] for rule in rules] == ["untagged"]


def expired(policy: dict, images: list[dict]) -> set[str]:
    """Which images ECR's lifecycle policy expires, by its documented evaluation rules (ECR User
    Guide, "Lifecycle policy evaluation rules" and "Lifecycle policy properties"): rules apply in
    rulePriority order; a tagged rule selects an image if one of its tags matches the pattern (so
    an image is reachable through any of its tags); an image selected by a rule cannot be expired
    by a rule of lower priority; imageCountMoreThan keeps the newest N selected images."""
    decided: set[str] = set()
    gone: set[str] = set()
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        candidates = [i for i in images if i["digest"] not in decided]
        if selection["tagStatus"] == "untagged":
            chosen = [i for i in candidates if not i["tags"]]
        elif selection["tagStatus"] == "tagged":
            patterns = selection.get("tagPatternList") or [p + "*" for p in selection.get("tagPrefixList", [])]
            chosen = [i for i in candidates if all(any(fnmatch.fnmatchcase(t, p) for t in i["tags"]) for p in patterns)]
        else:
            chosen = candidates
        decided |= {i["digest"] for i in chosen}
        newest_first = sorted(chosen, key=lambda i: i["pushed"], reverse=True)
        gone |= {i["digest"] for i in newest_first[selection["countNumber"] :]}
    return gone


def test_no_released_image_ever_expires_however_many_builds_follow():
    stack = new_stack()
    ModelRepository(stack, "Repo", project="p", model="m")
    (repository,) = template_of(stack).find_resources("AWS::ECR::Repository").values()
    policy = json.loads(repository["Properties"]["LifecyclePolicy"]["LifecyclePolicyText"])
    # What `mlops image release` leaves: each release under its version only; a few interrupted
    # pushes left manifests without tags.
    releases = [{"digest": f"r{n}", "tags": [f"0.{n}.0"], "pushed": n} for n in range(60)]
    orphans = [{"digest": f"u{n}", "tags": [], "pushed": 100 + n} for n in range(3)]
    assert expired(policy, releases + orphans) == {"u0", "u1"}  # untagged beyond the newest one


def test_the_evaluator_reproduces_the_bug_of_a_pattern_rule_on_a_second_tag():
    """The rule this repository had (keep 20 images tagged *-*) with release images still carrying
    their ci-<pipeline> tag: 20 later CI builds expired the released ones."""
    old = {
        "rules": [
            {
                "rulePriority": 2,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*-*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 20,
                },
            }
        ]
    }
    released = {"digest": "serving", "tags": ["ci-100", "1.0.0"], "pushed": 0}
    builds = [{"digest": f"b{n}", "tags": [f"ci-{101 + n}"], "pushed": 1 + n} for n in range(20)]
    assert "serving" in expired(old, [released, *builds])


@pytest.mark.parametrize("project,model", [("Endpoint", "m"), ("p", "Model_A"), ("p", "a--b"), ("p", "-a")])
def test_invalid_names_fail_with_field_and_value(project, model):
    with pytest.raises(ValueError, match=r"(project|model)='"):
        ModelRepository(new_stack(), "Repo", project=project, model=model)
