"""16.13: `make audit` runs pip-audit on the pinned requirements, outside the CI gate."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_audit_runs_pip_audit_on_the_pinned_requirements():
    result = subprocess.run(["make", "-n", "audit"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert re.search(r"pip install --quiet pip-audit==\d+\.\d+\.\d+", result.stdout)  # the tool itself pinned
    command = next(line for line in result.stdout.splitlines() if "pip-audit --strict" in line)
    assert "-r requirements-dev.txt" in command
    # requirements-dev.txt includes requirements.txt: both files are audited.
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def test_every_requirement_is_pinned():
    """pip-audit checks the versions written down; a range would audit whatever resolves today."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line.startswith("-r"):
                continue
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{name}: {line} is not pinned"


def test_the_audit_is_not_part_of_the_ci_gate():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "audit" not in ci
    test_target = (ROOT / "Makefile").read_text().split("\ntest:")[1].split("\n\n")[0]
    assert "audit" not in test_target
