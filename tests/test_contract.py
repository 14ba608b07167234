"""The service against its own contract: schemathesis (a generator no one here wrote) reads
the device-wide openapi.json of a real server and runs all of its checks.

The generator's seed is fixed (`VAPIXLOG_CONTRACT_SEED`, `random` for a fresh one each run,
`VAPIXLOG_CONTRACT_EXAMPLES` for more examples), so that a run of `make test` is the same run
each time; wider, fresh runs find new cases (one found that a body of whitespace was taken
for no body), which then become tests of their own."""

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
EXAMPLES = int(os.environ.get("VAPIXLOG_CONTRACT_EXAMPLES", "100"))
TIMEOUT = max(220, EXAMPLES * 0.6)  # 100 examples: about 20 s; 1500: about 5 min


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("contract") / "state")
    yield server
    if server.proc:
        server.stop()


@pytest.mark.timeout(TIMEOUT + 20)
def test_schemathesis_finds_no_failure(device: Server, tmp_path: Path) -> None:
    seed_text = os.environ.get("VAPIXLOG_CONTRACT_SEED", "20261130")
    seed = [] if seed_text == "random" else ["--seed", seed_text]
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{device.url}/config/discover/openapi.json",
        "--auth",
        f"root:{USERS['root'][1]}",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--no-shrink",
        *seed,
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=tmp_path
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert "No issues found" in result.stdout, summary
    assert "Tested: 13" in result.stdout, summary  # every operation of the Log API
