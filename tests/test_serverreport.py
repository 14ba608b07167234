"""`/axis-cgi/serverreport.cgi` end to end against a real `vapixlog serve` process."""

from __future__ import annotations

import datetime
import io
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import client_for, start_server
from servers import Server
from vapixlog.severity import Severity
from vapixlog.syslog.line import format_line, parse_line

CGI = "/axis-cgi/serverreport.cgi"
LOG = "/config/rest/log/v1"
HOST = "report-host"
MODES = ["text", "tar_all", "zip", "zip_with_image"]
TORN = b"2026-11-25T19:32:11.043+00:00 report-host [ INFO    ] torn-tail-before-start"
FILENAME = re.compile(r'attachment; filename="serverreport_report-host_\d{8}T\d{6}\.(tar|zip)"')


def log_line(message: str) -> str:
    now = datetime.datetime.now().astimezone()
    return format_line(now, HOST, Severity.INFO, "seed", 1, message)


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A device named `report-host` whose previous boot left a torn persistent file."""
    state = tmp_path_factory.mktemp("report") / "state"
    persistent = state / "log" / "persistent"
    persistent.mkdir(parents=True)
    seeded = log_line("seeded-before-start") + "\n"
    (persistent / "messages-000001.log").write_bytes(seeded.encode() + TORN)
    server = start_server(state, "--hostname", HOST)
    yield server
    if server.proc:
        server.stop()


@pytest.fixture(scope="module")
def admin(report_server: Server) -> Iterator[httpx.Client]:
    with client_for(report_server) as client:
        yield client


@pytest.fixture(scope="module")
def messages(admin: httpx.Client) -> dict[str, str]:
    """One message written before persistent logging was enabled, one while it was on."""
    before, during = f"before-enable-{uuid.uuid4().hex}", f"while-enabled-{uuid.uuid4().hex}"
    assert admin.post(LOG + "/writeMessage", json={"data": {"msg": before}}).status_code == 200
    enable = admin.patch(LOG + "/persistent/enabled", json={"data": True})
    assert enable.status_code == 200
    write = admin.post(LOG + "/writeMessage", json={"data": {"msg": during, "severity": 3}})
    assert write.json() == {"status": "success"}
    return {"before": before, "during": during}


def header_block(report: str) -> dict[str, str]:
    """The `Key: value` lines before the first empty line."""
    head, sep, _ = report.partition("\n\n")
    assert sep, "the report has no empty line after its header block"
    fields = {}
    for line in head.splitlines():
        key, colon, value = line.partition(": ")
        assert colon, f"not a 'Key: value' line: {line!r}"
        fields[key] = value
    return fields


def check_report(report: str, server: Server, messages: dict[str, str]) -> dict[str, str]:
    fields = header_block(report)
    boot = (server.state_dir / "boot.json").read_text()
    assert str(uuid.UUID(fields["Boot id"])) == fields["Boot id"]  # a UUID, as on devices
    assert fields["Boot id"] in boot
    assert fields["Hostname"] == HOST
    assert re.fullmatch(r"ACCC8E[0-9A-F]{6}", fields["Serial number"])
    assert fields["Firmware"].startswith("vapixlog ")
    assert fields["Image sensor"].startswith("none")
    assert datetime.datetime.fromisoformat(fields["Time"]).tzinfo is not None
    assert re.fullmatch(r"\d+\.\d{3} s", fields["Uptime"])
    assert fields["Persistent logging"] == "on"
    assert fields["Persistent logging paused"] == "no"
    assert re.fullmatch(r"[1-9]\d* bytes", fields["Persistent log size"])
    assert fields["Persistent log files"] == "1"
    assert fields["Persistent log max size"] == f"{64 << 20} bytes"
    assert fields["Persistent log file size"] == f"{8 << 20} bytes"
    assert fields["Persistent log keep free"] == f"{32 << 20} bytes"
    assert fields["Volatile log max size"] == f"{4 << 20} bytes"
    tail = report.partition("\n\n")[2]
    assert tail.startswith("----- System log: the last 200 lines")
    assert messages["before"] in tail
    assert messages["during"] in tail
    return fields


def test_text_report(report_server: Server, admin: httpx.Client, messages: dict[str, str]) -> None:
    for response in (admin.get(CGI), admin.get(CGI, params={"mode": "text"})):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        check_report(response.text, report_server, messages)


def check_members(files: dict[str, bytes], server: Server, messages: dict[str, str]) -> None:
    persistent = sorted(name for name in files if name.startswith("var/log/persistent/"))
    recovered = [name for name in files if name.startswith("var/log/recovered/")]
    assert persistent == ["var/log/persistent/messages-000001.log"]
    assert len(recovered) == 1
    assert re.fullmatch(r"var/log/recovered/messages-000001\.log\.\d+\.torn", recovered[0])
    assert set(files) == {"serverreport_cgi.txt", "var/log/messages", *persistent, *recovered}

    check_report(files["serverreport_cgi.txt"].decode(), server, messages)
    volatile = files["var/log/messages"].decode()
    assert messages["before"] in volatile
    assert messages["during"] in volatile
    assert all(parse_line(line) for line in volatile.splitlines())

    stored = files[persistent[0]].decode()
    assert stored.endswith("\n")
    parsed = [parse_line(line) for line in stored.splitlines()]
    assert all(parsed)
    stored_messages = [line.message for line in parsed if line]
    assert "seeded-before-start" in stored_messages
    assert messages["during"] in stored_messages
    assert messages["before"] not in stored
    # The torn tail cut off at start-up is in the recovered part, not in the persistent one.
    assert files[recovered[0]] == TORN
    assert b"torn-tail" not in files[persistent[0]]


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        members = archive.getmembers()
        assert all(member.isfile() for member in members)
        assert members[0].name == "serverreport_cgi.txt"
        files = {}
        for member in members:
            extracted = archive.extractfile(member)
            assert extracted is not None
            files[member.name] = extracted.read()
    assert len(files) == len(members)
    return files


def zip_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
        assert infos[0].filename == "serverreport_cgi.txt"
        return {info.filename: archive.read(info) for info in infos}


def check_download(response: httpx.Response, ext: str) -> None:
    assert response.status_code == 200, response.text
    content_type = {"tar": "application/x-tar", "zip": "application/zip"}[ext]
    assert response.headers["content-type"] == content_type
    disposition = FILENAME.fullmatch(response.headers["content-disposition"])
    assert disposition is not None
    assert disposition.group(1) == ext
    assert int(response.headers["content-length"]) == len(response.content)


def test_tar_all(
    report_server: Server, admin: httpx.Client, messages: dict[str, str], tmp_path: Path
) -> None:
    response = admin.get(CGI, params={"mode": "tar_all"})
    check_download(response, "tar")
    assert len(response.content) % 512 == 0
    assert response.content.endswith(bytes(1024))
    check_members(tar_files(response.content), report_server, messages)
    # GNU tar reads it too.
    (tmp_path / "report.tar").write_bytes(response.content)
    listing = subprocess.run(
        ["tar", "-tf", str(tmp_path / "report.tar")], capture_output=True, text=True, check=True
    )
    assert listing.stdout.splitlines()[:2] == ["serverreport_cgi.txt", "var/log/messages"]


@pytest.mark.parametrize("mode", ["zip", "zip_with_image"])
def test_zip(report_server: Server, admin: httpx.Client, messages: dict[str, str], mode: str):
    response = admin.get(CGI, params={"mode": mode})
    check_download(response, "zip")
    files = zip_files(response.content)
    check_members(files, report_server, messages)
    assert "serverreport_image.jpg" not in files


@pytest.mark.parametrize("mode", MODES)
def test_post_form_body(
    report_server: Server, admin: httpx.Client, messages: dict[str, str], mode: str
) -> None:
    # The body wins over the query string.
    response = admin.post(CGI, params={"mode": "bogus"}, data={"mode": mode, "other": "x"})
    assert response.status_code == 200, response.text
    if mode == "text":
        check_report(response.text, report_server, messages)
    elif mode == "tar_all":
        check_download(response, "tar")
        check_members(tar_files(response.content), report_server, messages)
    else:
        check_download(response, "zip")
        check_members(zip_files(response.content), report_server, messages)


def test_post_with_query_only_and_empty_body(admin: httpx.Client) -> None:
    response = admin.post(CGI, params={"mode": "tar_all"})
    check_download(response, "tar")
    assert admin.post(CGI).headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("mode", MODES)
def test_only_admins(report_server: Server, mode: str) -> None:
    for user in ("viewer", "op"):
        with client_for(report_server, user) as client:
            assert client.get(CGI, params={"mode": mode}).status_code == 403
            assert client.post(CGI, data={"mode": mode}).status_code == 403
    with client_for(report_server, "viewer", digest=True) as client:
        assert client.get(CGI, params={"mode": mode}).status_code == 403
    anonymous = httpx.get(report_server.url + CGI, params={"mode": mode})
    assert anonymous.status_code == 401
    assert "www-authenticate" in anonymous.headers


def test_unknown_mode(admin: httpx.Client) -> None:
    for response in (
        admin.get(CGI, params={"mode": "tar"}),
        admin.post(CGI, data={"mode": "tar"}),
    ):
        assert response.status_code == 400
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "'tar'" in response.text
        for mode in MODES:
            assert mode in response.text


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods(admin: httpx.Client, method: str) -> None:
    response = admin.request(method, CGI, params={"mode": "tar_all"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_bad_bodies(admin: httpx.Client) -> None:
    big = admin.post(CGI, data={"mode": "text", "pad": "x" * 5000})
    assert big.status_code == 413
    json_body = admin.post(CGI, json={"mode": "tar_all"})
    assert json_body.status_code == 415
    assert "application/x-www-form-urlencoded" in json_body.text
    not_utf8 = admin.post(
        CGI,
        content=b"mode=\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400


# ----- a big archive in constant memory ---------------------------------------------------

BIG_FILES = 4
BIG_FILE_BYTES = 50 << 20


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

    def readinto(self, buffer: memoryview) -> int:
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


def test_tar_all_of_200_mb_streams_in_constant_memory(tmp_path: Path) -> None:
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
            client.timeout = httpx.Timeout(60)
            assert client.get(CGI).status_code == 200  # warm: authenticated, one request
            hwm_reset = reset_peak_rss(pid)
            baseline = rss_kib(pid)
            fds_before = open_log_fds(pid, state)
            peak = baseline
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kib(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            try:
                with client.stream("GET", CGI, params={"mode": "tar_all"}) as response:
                    assert response.status_code == 200
                    length = int(response.headers["content-length"])
                    reader = ResponseReader(response.iter_raw())
                    members = []
                    with tarfile.open(fileobj=reader, mode="r|") as archive:
                        for member in archive:
                            members.append((member.name, member.size))
                    # tarfile stops after the end blocks; count whatever follows them too.
                    while reader.read(1 << 20):
                        pass
            finally:
                done.set()
                sampler.join()
            elapsed = time.monotonic() - started
            peak = max(peak, rss_kib(pid))
            if hwm_reset:  # the exact peak, also between two samples
                peak = max(peak, peak_rss_kib(pid))

            assert reader.total == length
            names = [name for name, _ in members]
            assert names == [
                "serverreport_cgi.txt",
                "var/log/messages",
                *(f"var/log/persistent/messages-{n:06d}.log" for n in range(1, BIG_FILES + 1)),
            ]
            member_sizes = [size for _, size in members[2:]]
            assert member_sizes[:-1] == sizes[:-1]
            assert member_sizes[-1] >= sizes[-1]  # the service's boot entries are appended
            assert length >= sum(sizes) >= 200 << 20
            growth_mib = (peak - baseline) / 1024
            print(
                f"tar_all {length / 1e6:.0f} MB in {elapsed:.2f} s "
                f"({length / 1e6 / elapsed:.0f} MB/s incl. parsing), "
                f"RSS {baseline / 1024:.1f} MiB -> peak {peak / 1024:.1f} MiB "
                f"(+{growth_mib:.1f} MiB)"
            )
            assert growth_mib < 20

            # A client that goes away mid-stream: the server closes every file it opened.
            with client.stream("GET", CGI, params={"mode": "tar_all"}) as response:
                next(response.iter_raw())
            deadline = time.monotonic() + 5
            while open_log_fds(pid, state) > fds_before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert open_log_fds(pid, state) == fds_before
            assert client.get(CGI).status_code == 200  # and still serves
    finally:
        if server.proc:
            server.stop()
        shutil.rmtree(persistent, ignore_errors=True)
