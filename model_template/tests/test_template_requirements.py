"""The requirement files, the CI test job and the README agree on what the tests need."""

from __future__ import annotations

import re

from template_testing import TEMPLATE

# What `pytest` needs: the dev tools and, for the experiment launcher's test, the sagemaker SDK.
TEST_REQUIREMENTS = {"requirements-dev.txt", "requirements-experiment.txt"}


def _installed_files(line: str) -> set[str]:
    return set(re.findall(r"-r\s+(\S+)", line))


def _pins(name: str, seen: frozenset[str] = frozenset()) -> dict[str, str]:
    """``package -> version`` of a requirements file, following its ``-r`` includes."""
    pins: dict[str, str] = {}
    for raw in (TEMPLATE / name).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            included = line[2:].strip()
            assert included not in seen, f"{name} includes {included} in a cycle"
            pins.update(_pins(included, seen | {name}))
        elif line:
            package, _, version = line.partition("==")
            assert version, f"{name}: {line!r} is not an exact pin"
            pins[re.sub(r"\[.*\]", "", package).lower()] = version
    return pins


def test_ci_test_job_installs_what_the_tests_need():
    ci = (TEMPLATE / ".gitlab-ci.yml").read_text()
    test_job = ci.split("\n.test:\n", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in test_job.splitlines() if "pip install" in line]
    assert len(installs) == 1, test_job
    assert _installed_files(installs[0]) == TEST_REQUIREMENTS


def test_readme_installs_what_ci_installs():
    readme = (TEMPLATE / "README.md").read_text()
    setup = next(
        line for line in readme.splitlines() if line.startswith("pip install -r requirements-dev.txt")
    )
    assert _installed_files(setup) == TEST_REQUIREMENTS


def test_the_test_requirements_install_together():
    """A package pinned in two of the files must have one version, or pip refuses the install."""
    dev, experiment = _pins("requirements-dev.txt"), _pins("requirements-experiment.txt")
    assert "sagemaker" in experiment
    clashes = {
        name: (dev[name], experiment[name])
        for name in dev.keys() & experiment.keys()
        if dev[name] != experiment[name]
    }
    assert clashes == {}
