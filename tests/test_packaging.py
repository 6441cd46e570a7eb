"""The repository's shape: layout, the lock, environment.yml, clean notebooks, ignores."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".ci"))
from sync_environment import locked_requirements  # noqa: E402

TOP_LEVEL = (
    "notebooks research_lib reports data kernels executor environment.yml README.md tests".split()
)


def test_fixed_top_level_exists() -> None:
    missing = [name for name in TOP_LEVEL if not (ROOT / name).exists()]
    assert missing == []


def test_pyproject_installs_the_three_packages_and_pins_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "research_lib",
        "kernels",
        "executor",
    ]
    assert "torch==2.13.0" in project["project"]["dependencies"]


def test_lock_pins_every_dependency_exactly_and_torch_is_the_cpu_build() -> None:
    pins = locked_requirements(ROOT / "requirements.lock")
    assert pins, "requirements.lock is empty"
    loose = [p for p in pins if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=<>~!,;\s]+", p)]
    assert loose == []
    names = {p.split("==")[0].lower(): p.split("==")[1] for p in pins}
    assert names["torch"].startswith("2.13.0")
    assert not [n for n in names if n.startswith("nvidia-")], "the lock pulls CUDA packages"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for dep in (
        project["project"]["dependencies"] + project["project"]["optional-dependencies"]["dev"]
    ):
        name = re.split(r"[<>=!~\[ ]", dep, maxsplit=1)[0].lower()
        assert name in names, f"{name} is in pyproject.toml but not in requirements.lock"


def test_environment_yml_installs_the_locked_set() -> None:
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = [p for p in pip_section if not p.startswith("-")]
    assert sorted(pinned) == sorted(locked_requirements(ROOT / "requirements.lock")), (
        "environment.yml drifted from requirements.lock: run `make lock`"
    )
    assert "python=3.11" in env["dependencies"]


def notebook_paths() -> list[Path]:
    return sorted((ROOT / "notebooks").rglob("*.ipynb"))


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    if ".ipynb_checkpoints" in path.parts:
        pytest.skip("a checkpoint copy, not a committed notebook")
    nb = json.loads(path.read_text())
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert dirty == [], f"cells {dirty} of {path.name} have outputs: strip them (nbstripout)"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_are_valid_nbformat(path: Path) -> None:
    import nbformat

    nbformat.validate(nbformat.read(path, as_version=4))  # Voila hangs on an invalid notebook


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebooks_have_a_typed_parameters_cell_and_no_definitions(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for line in "".join(params[0]["source"]).splitlines():
        assert re.match(r"^\w+: [\w\[\], |]+ = .+  # .+", line), f"untyped or uncommented: {line!r}"
    for cell in code:
        source = "".join(cell["source"])
        assert not re.search(r"^\s*(def|class) ", source, re.M), "logic belongs in research_lib"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_generated_data_and_reports_are_ignored() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    probe = ["data/lake/bars/x.parquet", "data/lake.duckdb", "reports/run-1/manifest.json"]
    out = subprocess.run(["git", "check-ignore", *probe], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == probe
    kept = subprocess.run(
        ["git", "check-ignore", "data/README.md", "reports/.gitkeep"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert kept.stdout.strip() == ""


def test_ci_and_readme_use_the_two_commands() -> None:
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_talib_and_vectorbt_are_test_dependencies_only() -> None:
    modules = [
        p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for package in ("kernels", "research_lib")
        for p in sorted((ROOT / package).rglob("*.py"))
        if p.name != "__main__.py"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        "print(sorted(m for m in ('talib', 'vectorbt') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.lower().startswith("ta-lib") for d in dev["optional-dependencies"]["dev"])
    assert not any(d.lower().startswith("ta-lib") for d in dev["dependencies"])
