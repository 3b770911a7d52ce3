"""The rooms of the repository and who may enter which, read from the sources with `ast` (issue 19).

- `local/` is the composition root: it may import every package, and only tests and benchmarks import it.
- `console/` is imported by no package but `local/`.
- The worker's runtime (everything `worker/` reaches through its imports) holds nothing of
  `alert_lambda`, `console` or `local`; its image copies exactly the packages it reaches.
- `kvs/` is a library: it imports no other package of ours but `contracts`.
- `inference/` never imports `training/` (the artifact is self-contained); the serving image copies
  exactly the packages `inference/` reaches.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("contracts", "kvs", "archive", "worker", "training", "inference", "alert_lambda", "console", "local")


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages a module imports (anywhere in it: function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return found


@cache
def package_imports(package: str) -> dict[str, set[str]]:
    """module path -> the other packages of ours it imports."""
    return {
        path.relative_to(REPO).as_posix(): imported_packages(path) - {package}
        for path in sorted((REPO / package).rglob("*.py"))
    }


def reached_from(package: str) -> set[str]:
    """The packages `package` reaches through imports, itself included (transitively)."""
    seen, todo = {package}, [package]
    while todo:
        for imported in set().union(*package_imports(todo.pop()).values()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def offenders(package: str, forbidden: set[str]) -> dict[str, set[str]]:
    return {module: found & forbidden for module, found in package_imports(package).items() if found & forbidden}


def dockerfile_copies(dockerfile: str) -> set[str]:
    text = (REPO / dockerfile).read_text(encoding="utf-8")
    return {name for name in re.findall(r"^COPY\s+(\w+)/\s", text, flags=re.MULTILINE)}


def test_every_package_is_known() -> None:
    # GIVEN the top level WHEN a new Python package appears THEN it is given a place in these rules
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert on_disk == set(PACKAGES)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "local"])
def test_only_tests_and_benchmarks_import_local(package: str) -> None:
    assert offenders(package, {"local"}) == {}


@pytest.mark.parametrize("package", [p for p in PACKAGES if p not in ("console", "local")])
def test_only_local_imports_console(package: str) -> None:
    assert offenders(package, {"console"}) == {}


def test_the_worker_runtime_reaches_no_lambda_console_or_local() -> None:
    assert reached_from("worker") == {"worker", "kvs", "archive", "contracts"}


def test_kvs_is_a_library() -> None:
    assert reached_from("kvs") == {"kvs", "contracts"}


def test_inference_never_imports_training() -> None:
    assert reached_from("inference") == {"inference", "contracts"}


@pytest.mark.parametrize(("dockerfile", "package"), [("worker/Dockerfile", "worker"), ("inference/Dockerfile", "inference")])
def test_an_image_copies_exactly_what_its_code_reaches(dockerfile: str, package: str) -> None:
    assert dockerfile_copies(dockerfile) == reached_from(package)


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    # GIVEN a module that imports the console inside a function WHEN it is read THEN the import is seen
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from console.app import create_app\n    import local.demo as d\n")
    assert imported_packages(module) == {"console", "local"}
