"""Kill `vapixlog capture` with SIGKILL at random moments across a fleet, rerun the same
command until it finishes, and check that the job was done once (issue 15's acceptance):
every device captured exactly once (one tar, one sidecar, each tar complete and holding the
reboot), restart counters showing exactly one reboot per device, persistent logging off
everywhere, and a last run that touches nothing.

The device list writes some devices twice in other spellings (`127.0.0.1:PORT`,
`http://127.0.0.1:PORT/`, `HTTP://127.0.0.1:PORT`): each is captured once.

    python tests/capturekill.py --devices 200 --kills 10     # `make capture-kill-test`

`tests/test_capture_resume.py` runs a small version of it in `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import httpx

from conftest import start_server
from servers import USERS, VAPIXLOG, Server, free_port_block
from vapixlog.client._archive import TarCheck

ROOT = ("root", USERS["root"][1])
PERSISTENT = "/config/rest/log/v1/persistent/enabled"


@dataclass
class Figures:
    devices: int
    listed: int = 0
    runs: int = 0
    kills: int = 0
    kill_times: list[float] = field(default_factory=list)
    seconds: float = 0.0  # from the first run's start to the end of the one that finished
    resumed_devices: int = 0  # devices whose steps span more than one run
    reboots_recovered: int = 0  # reboot asked for by a killed run, finished by a later one
    intents_checked: int = 0  # killed between the intent to reboot and the device's answer
    start_seconds: float = 0.0  # the fleet's start


def capture_command(devices_file: Path, out: Path, concurrency: int) -> list[str]:
    return [
        *VAPIXLOG, "capture", "--json", "--devices-file", str(devices_file), "-o", str(out),
        "--concurrency", str(concurrency), "--reboot-grace", "2", "--wait-timeout", "60",
        "--retries", "6",
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAPIXLOG_")}
    env["VAPIXLOG_PASSWORD"] = ROOT[1]
    return env


def device_list(urls: list[str], rng: random.Random) -> list[str]:
    """Every URL, plus other spellings of some of them, shuffled in."""
    listed = list(urls)
    for url in rng.sample(urls, max(1, len(urls) // 10)):
        hostport = url.removeprefix("http://")
        listed.append(rng.choice([hostport, url + "/", "HTTP://" + hostport]))
    rng.shuffle(listed)
    return listed


def kill_until_done(
    command: list[str], kills: int, rng: random.Random, window: tuple[float, float]
) -> tuple[dict, int, list[float], float]:  # type: ignore[type-arg]
    """Run `command`, SIGKILL it after a random delay in `window` up to `kills` times,
    then let it finish. The finished run's JSON, the number of runs, the kill times, and
    the total wall time."""
    started = time.monotonic()
    kill_times: list[float] = []
    runs = 0
    while True:
        runs += 1
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
        )
        if len(kill_times) < kills:
            delay = rng.uniform(*window)
            try:
                proc.wait(delay)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                kill_times.append(round(delay, 2))
                continue
        stdout, stderr = proc.communicate(timeout=600)
        assert "Traceback" not in stderr, stderr
        assert proc.returncode == 0, (proc.returncode, stderr, stdout[-2000:])
        return json.loads(stdout), runs, kill_times, time.monotonic() - started


def lifetime(state: Path, index: int) -> dict[str, int]:
    path = state / "devices" / f"{index:04d}" / "lifetime.json"
    counts: dict[str, int] = json.loads(path.read_text())
    return counts


def journal_figures(out: Path) -> tuple[int, int, int]:
    """From the journal: devices whose steps span runs, reboots asked for in one run and
    seen through in a later one, and reboot intents whose answer a later run had to find
    out from the boot id. Asserts one reboot intent (at most one accepted reboot) per
    device."""
    runs: dict[str, set[int]] = {}
    events: dict[str, list[tuple[str, int]]] = {}
    for raw in (out / "capture-journal.jsonl").read_text().splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if "device" in line and line["event"] != "done":
            runs.setdefault(line["device"], set()).add(line["run"])
            events.setdefault(line["device"], []).append((line["event"], line["run"]))
    recovered = checked = 0
    for device, steps in events.items():
        names = [name for name, _ in steps]
        assert names.count("reboot-intent") == 1 and names.count("reboot-sent") <= 1, device
        intent = next(run for name, run in steps if name == "reboot-intent")
        rebooted = next(run for name, run in steps if name == "rebooted")
        sent = next((run for name, run in steps if name == "reboot-sent"), rebooted)
        recovered += rebooted > intent
        checked += sent > intent
    return sum(len(r) > 1 for r in runs.values()), recovered, checked


def check(fleet: Server, urls: list[str], out: Path, report: dict) -> None:  # type: ignore[type-arg]
    """Assert the job was done exactly once."""
    devices = report["devices"]
    assert sorted(d["device"] for d in devices) == sorted(urls), "each device once"
    assert all(d["ok"] and d["outcome"] == "captured" for d in devices), devices
    tars = sorted(out.glob("*.tar"))
    assert len(tars) == len(urls), [t.name for t in tars]
    assert not list(out.glob("*.part")), "no part file left"
    serials = set()
    for tar in tars:
        sidecar = json.loads(Path(f"{tar}.json").read_text())
        assert sidecar["outcome"] == "captured" and sidecar["archive"] == tar.name
        assert sidecar["serial"] and sidecar["serial"] in tar.name
        serials.add(sidecar["serial"])
        verify = TarCheck(str(tar))
        verify.feed(tar.read_bytes())
        verify.finish()
        with tarfile.open(tar) as archive:
            member = archive.extractfile("var/log/persist-all.log")
            assert member is not None
            text = member.read().decode()
        old, new = sidecar["old_boot_id"], sidecar["new_boot_id"]
        assert f"reboot: ending boot {old}" in text and f"boot {new}" in text, tar
    assert len(serials) == len(urls)
    for index in range(len(urls)):
        assert lifetime(fleet.state_dir, index) == {"boots": 2, "restarts": 1}, index
    with httpx.Client(auth=ROOT, timeout=10) as client:
        for url in urls:
            assert client.get(url + PERSISTENT).json()["data"] is False, url


def run(
    workdir: Path,
    devices: int,
    kills: int,
    *,
    concurrency: int,
    window: tuple[float, float],
    seed: int,
) -> Figures:
    rng = random.Random(seed)
    figures = Figures(devices)
    begun = time.monotonic()
    fleet = start_server(
        workdir / "state",
        "--devices", str(devices), "--reboot-downtime", "0.2",
        port=free_port_block(devices),
    )  # fmt: skip
    figures.start_seconds = round(time.monotonic() - begun, 2)
    try:
        urls = (fleet.state_dir / "devices.txt").read_text().split()
        listed = device_list(urls, rng)
        figures.listed = len(listed)
        devices_file = workdir / "fleet.txt"
        devices_file.write_text("\n".join(listed) + "\n")
        out = workdir / "out"
        command = capture_command(devices_file, out, concurrency)
        report, figures.runs, figures.kill_times, seconds = kill_until_done(
            command, kills, rng, window
        )
        figures.kills = len(figures.kill_times)
        figures.seconds = round(seconds, 2)
        check(fleet, urls, out, report)
        (
            figures.resumed_devices,
            figures.reboots_recovered,
            figures.intents_checked,
        ) = journal_figures(out)
        # Once more: everything is done already; nothing is sent to any device.
        again = subprocess.run(
            command, capture_output=True, text=True, timeout=120, env=environment(), check=False
        )
        assert again.returncode == 0, again.stderr
        assert all(d["earlier"] for d in json.loads(again.stdout)["devices"])
        assert "finished by an earlier run" in again.stderr
        check(fleet, urls, out, json.loads(again.stdout))
    finally:
        fleet.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--window", type=float, nargs=2, default=(0.5, 4.0), metavar=("LO", "HI"))
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    with tempfile.TemporaryDirectory(prefix="capturekill-") as tmp:
        figures = run(
            Path(tmp),
            args.devices,
            args.kills,
            concurrency=args.concurrency,
            window=tuple(args.window),  # type: ignore[arg-type]
            seed=seed,
        )
    print(json.dumps({"seed": seed, **figures.__dict__}, indent=1))
    print(
        f"OK: {figures.devices} devices ({figures.listed} lines in the list), "
        f"{figures.kills} SIGKILLs, {figures.runs} runs, {figures.seconds} s; every device "
        "captured once and rebooted once, persistent logging off everywhere"
    )


if __name__ == "__main__":
    main()
