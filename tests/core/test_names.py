from datetime import UTC, datetime

import pytest
import semver
from hypothesis import given
from hypothesis import strategies as st

from mlops_core import names

name_part = st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True).filter(
    lambda s: len(s) <= names.NAME_MAX_LENGTH
)


@given(
    project=name_part,
    model=name_part,
    major=st.integers(0, 999),
    minor=st.integers(0, 999),
    patch=st.integers(0, 999),
    retrain=st.integers(0, 9999),
    seconds=st.integers(0, 2_000_000_000),
)
def test_run_names_round_trip_and_respect_sagemaker_limits(project, model, major, minor, patch, retrain, seconds):
    when = datetime.fromtimestamp(seconds, tz=UTC)
    run = names.RunName.new(project, model, f"{major}.{minor}.{patch}", retrain, when)
    text = str(run)
    assert len(text) <= 63 and names.SAGEMAKER_NAME_PATTERN.fullmatch(text)
    assert names.RunName.parse(text) == run
    assert run.stem == names.model_stem(project, model)


def test_stems_never_collide_across_the_project_model_boundary():
    assert names.model_stem("a-b", "c") != names.model_stem("a", "b-c")


def test_long_pairs_are_shortened_stably_and_uniquely():
    a = names.model_stem("endpoint-security", "process-classifier")
    b = names.model_stem("endpoint-security", "process-classifier-v2")
    assert (
        len(a) <= names.STEM_MAX_LENGTH and a != b and a == names.model_stem("endpoint-security", "process-classifier")
    )


@pytest.mark.parametrize("bad", ["Upper", "under_score", "double--hyphen", "-lead", "trail-", "", "a" * 41, "dot.ted"])
def test_invalid_names_are_refused_with_field_and_value(bad):
    with pytest.raises(names.InvalidName, match=rf"model={bad!r}"):
        names.validate_name("model", bad)


def test_ecr_repository_is_project_slash_model():
    assert names.ecr_repository_name("proj-a", "model-b") == "proj-a/model-b"


def test_prerelease_images_are_not_trained():
    with pytest.raises(names.InvalidName, match="only MAJOR.MINOR.PATCH"):
        names.RunName.new("p", "m", "1.2.3-rc.1", 0)


def test_model_version_is_semver_with_retraining_as_build_metadata():
    run = names.RunName.new("p", "m", "1.4.2", 3)
    assert run.model_version == "1.4.2+r3"
    assert semver.Version.parse(run.model_version).build == "r3"


def test_latest_run_and_next_retrain_number_filter_client_side():
    t = lambda h: datetime(2026, 11, 25, h, tzinfo=UTC)  # noqa: E731
    listed = [
        str(names.RunName.new("p", "m", "1.0.0", 0, t(1))),
        str(names.RunName.new("p", "m", "1.0.0", 1, t(2))),
        str(names.RunName.new("p", "m", "1.1.0", 0, t(3))),
        str(names.RunName.new("p", "m-2", "9.0.0", 0, t(4))),  # another model: must be ignored
        "p--m-hand-made-model",
    ]
    latest = names.latest_run(listed, "p", "m")
    assert (str(latest.version), latest.retrain) == ("1.1.0", 0)
    assert names.next_retrain_number(listed, "p", "m", "1.0.0") == 2
    assert names.next_retrain_number(listed, "p", "m", "1.1.0") == 1
    assert names.next_retrain_number(listed, "p", "m", "2.0.0") == 0
    assert names.latest_run([], "p", "m") is None


def test_last_trained_at_is_the_newest_run_by_time_not_by_version():
    t = lambda d: datetime(2026, 11, d, tzinfo=UTC)  # noqa: E731
    listed = [
        str(names.RunName.new("p", "m", "2.0.0", 0, t(1))),
        str(names.RunName.new("p", "m", "1.0.0", 3, t(20))),  # a retraining of an older image, later
        str(names.RunName.new("p", "m-2", "1.0.0", 0, t(28))),  # another model
    ]
    assert names.last_trained_at(listed, "p", "m") == t(20)
    assert names.last_trained_at([], "p", "m") is None


def test_pipeline_config_path_is_per_model():
    assert names.pipeline_config_path("p", "m") == "pipelines/p/m/pipeline.json"


def test_run_name_prefixes_narrow_a_listing_to_one_model_version_or_retraining():
    run = str(names.RunName.new("p", "m", "1.4.2", 3))
    assert run.startswith(names.run_name_prefix("p", "m", "1.4.2", 3))
    assert run.startswith(names.run_name_prefix("p", "m", "1.4.2"))
    assert run.startswith(names.run_name_prefix("p", "m"))
    # "-r3-" must not also select retraining 30, nor 1.4.2 select 1.4.20.
    assert not str(names.RunName.new("p", "m", "1.4.2", 30)).startswith(names.run_name_prefix("p", "m", "1.4.2", 3))
    assert not str(names.RunName.new("p", "m", "1.4.20", 0)).startswith(names.run_name_prefix("p", "m", "1.4.2"))


def test_registration_record_and_lease_live_under_the_models_artifact_prefix():
    assert names.registration_uri("b", "p", "m", "run") == "s3://b/p/m/runs/run/model-package.json"
    assert names.run_lease_uri("b", "p", "m", names.DAG_TRAINING) == f"s3://b/p/m/leases/{names.DAG_TRAINING}.json"
