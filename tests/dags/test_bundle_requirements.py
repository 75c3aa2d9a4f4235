"""Everything the DAG bundle imports is installed on MWAA: by dag_assets/requirements.txt, by
Airflow itself, or shipped in the bundle (mlops_dags in the DAGs folder, mlops_core in plugins.zip)."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires

from conftest import REPO, SOURCE_DAGS

REQUIREMENTS = REPO / "dag_assets" / "requirements.txt"
SHIPPED = {"mlops_dags", "mlops_core"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names() -> set[str]:
    names = set()
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(_canonical(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def _with_dependencies(names: set[str]) -> set[str]:
    """The distributions and, transitively, what they require (as pip would install)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needed = requires(name) or []
        except PackageNotFoundError:  # an optional dependency not installed here
            continue
        todo.extend(_canonical(re.split(r"[<>=!~;\[ (]", r, maxsplit=1)[0]) for r in needed if "extra ==" not in r)
    return seen


def _imported_top_level_modules() -> set[str]:
    modules = set()
    for path in [*SOURCE_DAGS.glob("*.py"), *SOURCE_DAGS.glob("mlops_dags/*.py"), *(REPO / "mlops_core").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__"}


def test_mwaa_requirements_cover_every_third_party_import():
    provided = _with_dependencies(_requirement_names() | {"apache-airflow"})
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_imported_top_level_modules() - SHIPPED):
        owners = {_canonical(d) for d in distributions.get(module, [])}
        assert owners, f"{module} is imported by the DAG bundle but not installed in this Airflow venv"
        if not owners & provided:
            missing[module] = sorted(owners)
    assert missing == {}, f"not installed by dag_assets/requirements.txt nor by Airflow: {missing}"


def test_semver_is_pinned_because_the_3_3_1_constraints_leave_it_free():
    constraints = (REPO / "dag_assets" / "constraints" / "constraints-3.3.1.txt").read_text().lower()
    assert "\nsemver==" not in constraints
    assert re.search(r"^semver==\d+\.\d+\.\d+$", REQUIREMENTS.read_text(), re.MULTILINE)


def test_requirements_carry_no_constraint_line_of_their_own():
    # MwaaEnvironment prepends the --constraint line for the environment's Airflow version.
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    assert not [line for line in lines if line.startswith(("-c", "--constraint"))]


def test_aiobotocore_for_the_deferrable_operators_is_required_and_pinned_by_both_images():
    # The provider's triggers build aiobotocore clients; the provider does not depend on it.
    assert "aiobotocore" in _requirement_names()
    for version in ("3.3.1", "2.11.2"):
        constraints = (REPO / "dag_assets" / "constraints" / f"constraints-{version}.txt").read_text()
        assert re.search(r"^aiobotocore==\d+\.\d+\.\d+$", constraints, re.MULTILINE), version
    import aiobotocore  # noqa: F401 - the venv built from these requirements has it
