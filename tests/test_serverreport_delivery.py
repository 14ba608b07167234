"""How `/axis-cgi/serverreport.cgi` is delivered: the head at once and the body after
`--report-delay`, a reboot cutting the delay short, and big reports in constant memory."""

from __future__ import annotations

import datetime
import io
import os
import re
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from reboots import rpc
from servers import USERS, Server
from vapixlog.severity import Severity
from vapixlog.syslog.line import format_line

CGI = "/axis-cgi/serverreport.cgi"
HOST = "report-host"
END = b"\n----- Server Report End -----\n"


def timed_download(client: httpx.Client, mode: str) -> tuple[float, float, float, bytes]:
    """(seconds to the head, to the first body byte, to the end; the body) of a report."""
    started = time.monotonic()
    with client.stream("GET", CGI, params={"mode": mode}) as response:
        head = time.monotonic() - started
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = response.iter_raw()
        body = next(chunks)
        first = time.monotonic() - started
        body += b"".join(chunks)
    return head, first, time.monotonic() - started, body


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("slow") / "state"
    server = start_server(state, "--report-delay", "2", "--reboot-downtime", "0.3")
    yield server
    if server.proc:
        server.stop()


@pytest.mark.parametrize("mode", ["text", "tar_all", "zip"])
def test_report_delay_sends_the_head_at_once(slow_server: Server, mode: str) -> None:
    with client_for(slow_server) as client:
        client.timeout = httpx.Timeout(30)
        assert client.get("/config/rest/log/v1").status_code == 200  # authenticated
        head, first, end, body = timed_download(client, mode)
    assert head < 1.0
    assert 1.9 <= first < 4.0
    assert end < 5.0
    if mode == "text":
        assert body.endswith(END)
    elif mode == "zip":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            assert archive.read("serverreport_cgi.txt").endswith(END)
    else:
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            assert "var/log/messages" in archive.getnames()


def test_ax_devil_waits_for_a_delayed_report(slow_server: Server) -> None:
    from ax_devil_device_api import Client, DeviceConfig

    config = DeviceConfig.http("127.0.0.1", "root", USERS["root"][1], port=slow_server.port)
    started = time.monotonic()
    with Client(config) as client:
        data = client.device_debug.download_server_report()
    assert time.monotonic() - started >= 1.9
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["serverreport_cgi.txt", "serverreport_image.jpg"]


def test_a_reboot_ends_the_delay(tmp_path: Path) -> None:
    """A device going down does not keep a delayed report (nor its own reboot) waiting."""
    server = start_server(tmp_path / "state", "--report-delay", "60", "--reboot-downtime", "0.3")
    try:
        result: dict[str, object] = {}

        def download() -> None:
            with client_for(server) as client:
                client.timeout = httpx.Timeout(90)
                result["timing"] = timed_download(client, "text")

        thread = threading.Thread(target=download)
        thread.start()
        time.sleep(0.5)  # the head is out, the body is waiting
        reply = rpc(server, {"apiVersion": "1.0", "method": "reboot"})
        assert "error" not in reply.json()
        thread.join(20)
        assert not thread.is_alive()
        head, _, end, body = result["timing"]  # type: ignore[misc]
        assert head < 1.0 and end < 5.0
        assert body.endswith(END)  # the whole report, not a cut one
        assert b"Restart Counter: 1" in body  # taken after the reboot request
    finally:
        if server.proc:
            server.stop()


def test_a_client_leaving_during_the_delay(slow_server: Server) -> None:
    with client_for(slow_server) as client:
        with client.stream("GET", CGI, params={"mode": "tar_all"}) as response:
            assert response.status_code == 200
        time.sleep(2.5)  # past the delay of the abandoned report
        head, _, _, body = timed_download(client, "text")
    assert head < 1.0 and body.endswith(END)
    assert "Exception" not in slow_server.output()


# ----- a big report in constant memory ----------------------------------------------------

BIG_FILES = 4
BIG_FILE_BYTES = 50 << 20


def log_line(message: str) -> str:
    now = datetime.datetime.now().astimezone()
    return format_line(now, HOST, Severity.INFO, "seed", 1, message)


def write_big_logs(persistent: Path) -> list[int]:
    """BIG_FILES valid log files of about BIG_FILE_BYTES each; returns their sizes."""
    persistent.mkdir(parents=True)
    block = "".join(
        log_line(f"bulk entry {i:04d} " + "x" * 80) + "\n" for i in range(1000)
    ).encode()
    data = block * -(-BIG_FILE_BYTES // len(block))  # at least BIG_FILE_BYTES
    for n in range(1, BIG_FILES + 1):
        (persistent / f"messages-{n:06d}.log").write_bytes(data)
    return [len(data)] * BIG_FILES


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (the kernel's peak RSS) of `pid`; False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def open_log_fds(pid: int, state: Path) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        count += target.startswith(str(state / "log"))
    return count


class ResponseReader(io.RawIOBase):
    """A file over `iter_bytes`, so tarfile can parse a download as it streams."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self.total += len(chunk)
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class PeakRss:
    """The server's peak RSS while a block runs, sampled and (where allowed) exact."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> PeakRss:
        self.exact = reset_peak_rss(self.pid)
        self.baseline = self.peak = rss_kib(self.pid)
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        self.started = time.monotonic()
        return self

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.started
        self._done.set()
        self._sampler.join()
        self.peak = max(self.peak, rss_kib(self.pid))
        if self.exact:  # the exact peak, also between two samples
            self.peak = max(self.peak, peak_rss_kib(self.pid))

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 1024


def test_200_mb_reports_stream_in_constant_memory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    persistent = state / "log" / "persistent"
    sizes = write_big_logs(persistent)
    (state / "settings.json").write_text('{"persistent_enabled": true}')
    server = start_server(
        state, "--hostname", HOST, "--persistent-max-size", "1G", "--persistent-file-size", "64M"
    )
    try:
        assert server.proc is not None
        pid = server.proc.pid
        with client_for(server) as client:
            client.timeout = httpx.Timeout(120)
            assert client.get(CGI, params={"mode": "tar_kernel_log"}).status_code == 200  # warm
            fds_before = open_log_fds(pid, state)

            tar_all = client.stream("GET", CGI, params={"mode": "tar_all"})
            with PeakRss(pid) as tar_rss, tar_all as response:
                assert response.status_code == 200
                reader = ResponseReader(response.iter_raw())
                members = []
                with tarfile.open(fileobj=reader, mode="r|") as archive:
                    for member in archive:
                        members.append((member.name, member.size))
                # tarfile stops after the end blocks; count whatever follows them too.
                while reader.read(1 << 20):
                    pass
            length = reader.total
            names = [name for name, _ in members]
            assert names[0] == "var/log/messages"
            assert names[-2:] == ["var/log/persist-all.log", "var/lib/syslog-ng/audit.log"]
            joined = members[-2][1]
            assert sum(sizes) < joined < sum(sizes) + (64 << 10)  # + this boot's entries
            assert length >= sum(sizes) >= 200 << 20
            print(
                f"tar_all {length / 1e6:.0f} MB in {tar_rss.elapsed:.2f} s "
                f"({length / 1e6 / tar_rss.elapsed:.0f} MB/s incl. parsing), "
                f"RSS {tar_rss.baseline / 1024:.1f} MiB -> peak {tar_rss.peak / 1024:.1f} MiB "
                f"(+{tar_rss.growth_mib:.1f} MiB)"
            )
            assert tar_rss.growth_mib < 20

            # The zip deflates the text report, which holds the whole persistent log.
            zip_path = tmp_path / "report.zip"
            zip_mode = client.stream("GET", CGI, params={"mode": "zip"})
            with PeakRss(pid) as zip_rss, zip_path.open("wb") as out, zip_mode as response:
                assert response.status_code == 200
                for chunk in response.iter_raw():
                    out.write(chunk)
            with zipfile.ZipFile(zip_path) as archive:
                (info,) = archive.infolist()
                assert info.filename == "serverreport_cgi.txt"
                assert info.file_size > sum(sizes)
                with archive.open(info) as text:  # reading it to the end checks the CRC
                    while text.read(8 << 20):
                        pass
            print(
                f"zip of a {info.file_size / 1e6:.0f} MB report ({info.compress_size / 1e6:.1f} "
                f"MB) in {zip_rss.elapsed:.2f} s, RSS +{zip_rss.growth_mib:.1f} MiB"
            )
            assert zip_rss.growth_mib < 20

            # A client that goes away mid-stream: the server closes every file it opened.
            for mode in ("tar_all", "zip"):
                with client.stream("GET", CGI, params={"mode": mode}) as response:
                    next(response.iter_raw())
                deadline = time.monotonic() + 5
                while open_log_fds(pid, state) > fds_before and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert open_log_fds(pid, state) == fds_before, mode
            assert client.get(CGI).status_code == 200  # and still serves
    finally:
        if server.proc:
            server.stop()
        shutil.rmtree(persistent, ignore_errors=True)
