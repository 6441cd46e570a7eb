"""Write environment.yml from requirements.lock, so conda users install the same locked set.

Run by `make lock`. tests/test_packaging.py fails if the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = """\
# Conda environment for the research platform. Generated from requirements.lock by
# `make lock` (.ci/sync_environment.py): edit pyproject.toml, then run `make lock`.
# torch is the CPU build (2.13.0+cpu); point pip at a find-links folder or index that has it.
name: quant-research
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def locked_requirements(lock: Path) -> list[str]:
    """The `name==version` lines of a uv/pip-tools lock file, in file order."""
    lines = []
    for raw in lock.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def main() -> None:
    pins = locked_requirements(ROOT / "requirements.lock")
    body = HEADER + "".join(f"      - {pin}\n" for pin in pins) + "      - -e .\n"
    (ROOT / "environment.yml").write_text(body)


if __name__ == "__main__":
    main()
