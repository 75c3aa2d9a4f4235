from mlops_core.versions import Bump, next_version, released_versions


def test_next_version_from_existing_tags_ignores_noise_and_prereleases():
    tags = ["latest", "sha-abc123", "0.9.0", "1.2.0", "v1.3.1", "1.10.0-rc.1", "1.4.0+build"]
    assert [str(v) for v in released_versions(tags)] == ["0.9.0", "1.2.0", "1.3.1"]
    assert str(next_version(tags, "patch")) == "1.3.2"
    assert str(next_version(tags, Bump.MINOR)) == "1.4.0"
    assert str(next_version(tags, "major")) == "2.0.0"


def test_first_version_when_the_repository_is_empty():
    assert str(next_version([], "minor")) == "0.1.0"
