"""The pytest plugin as a user meets it: tests/plugin_project, a project of its own (its own
pytest.ini, none of this suite's conftest), run with pytest in a subprocess; the plugin comes
from vapixlog's `pytest11` entry point alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

PROJECT = Path(__file__).parent / "plugin_project"


def test_the_plugin_project_passes(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}", "-p", "no:randomly"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = time.monotonic() - start
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    cases = ET.parse(report).getroot().iter("testcase")
    by_file: dict[str, list[float]] = {}
    for case in cases:
        assert case.find("failure") is None and case.find("error") is None
        assert case.find("skipped") is None, case.get("name")
        by_file.setdefault(case.get("classname", ""), []).append(float(case.get("time", 0)))
    fresh = by_file["test_fresh_devices"]
    assert len(fresh) == 100
    # 100 tests, a fresh device each (started, used, stopped): a few seconds in all.
    assert sum(fresh) < 15, f"100 fresh-device tests took {sum(fresh):.1f} s"
    assert len(by_file["test_faults"]) >= 18
    assert len(by_file["test_fixtures"]) >= 7
    print(f"plugin project: {wall:.1f} s; 100 fresh-device tests: {sum(fresh):.2f} s")
