"""Fixtures: each simulator runs once per test session as a real subprocess on a free port.

The function-scoped fixtures reset the simulator first, so each test starts from the demo
accounts and streams with no data and no faults. No Django, no database.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The simulators package sits at the project root; make it importable under any runner.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from simulators.testing import SimulatorProcess  # noqa: E402


@pytest.fixture(scope="session")
def wattcarbon_process() -> Iterator[SimulatorProcess]:
    with SimulatorProcess("wattcarbon") as sim:
        yield sim


@pytest.fixture(scope="session")
def wattics_process() -> Iterator[SimulatorProcess]:
    with SimulatorProcess("wattics", "--streams", "extra-1,extra-2") as sim:
        yield sim


@pytest.fixture
def wattcarbon(wattcarbon_process: SimulatorProcess) -> SimulatorProcess:
    wattcarbon_process.reset()
    return wattcarbon_process


@pytest.fixture
def wattics(wattics_process: SimulatorProcess) -> SimulatorProcess:
    wattics_process.reset()
    return wattics_process
