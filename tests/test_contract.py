"""The service against its own contract: schemathesis (a generator no one here wrote) reads
the device-wide openapi.json of a real server and runs all of its checks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import start_server
from servers import USERS, Server

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("contract") / "state")
    yield server
    if server.proc:
        server.stop()


@pytest.mark.timeout(240)
def test_schemathesis_finds_no_failure(device: Server, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{device.url}/config/discover/openapi.json",
        "--auth",
        f"root:{USERS['root'][1]}",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("VAPIXLOG_CONTRACT_EXAMPLES", "100"),
        "--no-shrink",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=220, check=False, cwd=tmp_path
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "No issues found" in result.stdout, summary
    assert "Tested: 13" in result.stdout, summary  # every operation of the Log API
