"""`/axis-cgi/serverreport.cgi` end to end against a real `vapixlog serve` process: the text
layout, the archive members and names, bad input, through httpx, curl and ax-devil-device-api.
Delivery timing and memory: `test_serverreport_delivery.py`."""

from __future__ import annotations

import datetime
import io
import json
import re
import subprocess
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import client_for, start_server
from reboots import reboot_and_wait
from servers import USERS, Server
from vapixlog.severity import Severity
from vapixlog.syslog.line import format_line, parse_line

CGI = "/axis-cgi/serverreport.cgi"
LOG = "/config/rest/log/v1"
HOST = "report-host"
SERIAL = "ACCC8E0A0B0C"
AUTH = ("root", USERS["root"][1])
PRODUCT = f"Product: vapixlog {version('vapixlog')} emulated device"
MODES = ["text", "zip", "zip_with_image", "tar_all", "tar_kernel_log"]
TORN = b"2026-11-25T19:32:11.043+00:00 report-host [ INFO    ] torn-tail-before-start"
DOWNLOAD = re.compile(r'attachment; filename="Axis_SR_(\d{8}_\d{6})_([0-9A-F]{12})\.(zip|tar)"')
TEXT_SECTIONS = [
    "/usr/share/axis-release/variables",
    "uptime",
    "Lifetime Statistics",
    "System log",
    "Persistent system log",
    "Access log",
    "Audit log",  # AXIS OS 12.5+, as the default profile
]
THRESHOLDS = {
    "var/log/info.log": Severity.INFO,
    "var/log/warning.log": Severity.WARNING,
    "var/log/error.log": Severity.ERROR,
    "var/log/critical.log": Severity.CRITICAL,
}
AUDIT_MEMBER = "var/lib/syslog-ng/audit.log"
TAR_ALL = ["var/log/messages", *THRESHOLDS, "var/log/persist-all.log", AUDIT_MEMBER]
UPTIME = re.compile(
    r" \d\d:\d\d:\d\d up (\d+ days?, )?( ?\d+:\d\d|\d+ min),  0 users,  "
    r"load average: \d+\.\d\d, \d+\.\d\d, \d+\.\d\d"
)


def log_line(message: str) -> str:
    now = datetime.datetime.now().astimezone()
    return format_line(now, HOST, Severity.INFO, "seed", 1, message)


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A device whose previous boot left a persistent file with a torn tail."""
    state = tmp_path_factory.mktemp("report") / "state"
    persistent = state / "log" / "persistent"
    persistent.mkdir(parents=True)
    seeded = log_line("seeded-before-start") + "\n"
    (persistent / "messages-000001.log").write_bytes(seeded.encode() + TORN)
    # The identity first, so the users added before the start have this device's realm.
    (state / "identity.json").write_text(json.dumps({"serial": SERIAL, "hostname": HOST}))
    server = start_server(state, "--hostname", HOST, "--serial", SERIAL)
    yield server
    if server.proc:
        server.stop()


@pytest.fixture(scope="module")
def admin(report_server: Server) -> Iterator[httpx.Client]:
    with client_for(report_server) as client:
        yield client


@pytest.fixture(scope="module")
def messages(admin: httpx.Client) -> dict[str, str]:
    """One message before persistent logging was enabled, then one per severity while on."""
    token = uuid.uuid4().hex
    before = f"before-enable-{token}"
    assert admin.post(LOG + "/writeMessage", json={"data": {"msg": before}}).status_code == 200
    enable = admin.patch(LOG + "/persistent/enabled", json={"data": True})
    assert enable.status_code == 200
    written = {"before": before}
    for severity in Severity:
        msg = f"severity-{severity.value}-{token}"
        body = {"data": {"msg": msg, "severity": severity.value}}
        assert admin.post(LOG + "/writeMessage", json=body).json() == {"status": "success"}
        written[str(severity.value)] = msg
    written["during"] = written["3"]
    return written


# ----- the text report --------------------------------------------------------------------


def split_report(report: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(head lines, [(section title, body lines)]) of a text report in the device layout."""
    start, end = "\n----- Server Report Start -----\n\n", "\n----- Server Report End -----\n"
    assert report.startswith(start)
    assert report.endswith(end)
    lines = report[len(start) : -len(end)].split("\n")
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        marker = re.fullmatch(r"----- (.+) -----", line)
        if marker:
            sections.append((marker[1], []))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    assert head[-1] == ""  # an empty line before the first section
    for title, body in sections:
        # Each section: its marker, an empty line, the body, an empty line.
        assert body[0] == "" and body[-1] == "", title
        body[:] = body[1:-1]
    return head[:-1], sections


def check_text(report: str, server: Server, messages: dict[str, str]) -> dict[str, list[str]]:
    head, sections = split_report(report)
    assert head == [PRODUCT, f"Serial No: {SERIAL}"]
    assert [title for title, _ in sections] == TEXT_SECTIONS
    body = dict(sections)
    assert body["/usr/share/axis-release/variables"] == ['RELEASE="12.11.77"', 'PART="vapixlog"']
    assert len(body["uptime"]) == 1 and UPTIME.fullmatch(body["uptime"][0]), body["uptime"]
    lifetime = json.loads((server.state_dir / "lifetime.json").read_text())
    assert body["Lifetime Statistics"] == [
        f"Boot-up Counter: {lifetime['boots']}",
        f"Restart Counter: {lifetime['restarts']}",
    ]
    assert not any(line.startswith("Boot id") for line in report.splitlines())

    system = body["System log"]
    assert all(parse_line(line) for line in system)
    assert any(messages["before"] in line for line in system)
    assert any(messages["during"] in line for line in system)
    persistent = body["Persistent system log"]
    assert all(parse_line(line) for line in persistent)
    assert any("seeded-before-start" in line for line in persistent)
    assert any(messages["during"] in line for line in persistent)
    assert not any(messages["before"] in line for line in persistent)
    assert "torn-tail" not in report  # set aside at start-up, in no report
    access = [parse_line(line) for line in body["Access log"]]
    assert all(entry and entry.tag == "httpd" for entry in access), body["Access log"]
    return body


def check_chunked(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.headers["cache-control"] == "no-store"


def test_text_report(report_server: Server, admin: httpx.Client, messages: dict[str, str]) -> None:
    for response in (admin.get(CGI), admin.get(CGI, params={"mode": "text"})):
        check_chunked(response)
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert "content-disposition" not in response.headers
        check_text(response.text, report_server, messages)


def test_lifetime_counters_count_boots_and_reboots(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state", "--reboot-downtime", "0.3")
    try:

        def counters() -> list[str]:
            report = httpx.get(server.url + CGI, auth=("root", USERS["root"][1])).text
            return dict(split_report(report)[1])["Lifetime Statistics"]

        assert counters() == ["Boot-up Counter: 1", "Restart Counter: 0"]
        reboot_and_wait(server)
        assert counters() == ["Boot-up Counter: 2", "Restart Counter: 1"]
        server.stop()  # a plain stop and start is a boot, not a requested restart
        server.start()
        assert counters() == ["Boot-up Counter: 3", "Restart Counter: 1"]
    finally:
        if server.proc:
            server.stop()


# ----- archives ---------------------------------------------------------------------------


def check_download(response: httpx.Response, ext: str, serial: str = SERIAL) -> None:
    check_chunked(response)
    content_type = {"tar": "application/x-tar", "zip": "application/zip"}[ext]
    assert response.headers["content-type"] == content_type
    name = DOWNLOAD.fullmatch(response.headers["content-disposition"])
    assert name is not None, response.headers["content-disposition"]
    assert name[2] == serial
    assert name[3] == ext
    stamp = datetime.datetime.strptime(name[1], "%Y%m%d_%H%M%S")
    assert abs((datetime.datetime.now() - stamp).total_seconds()) < 60  # local time


def zip_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos)
        return {info.filename: archive.read(info) for info in infos}


def tar_files(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        members = archive.getmembers()
        assert all(member.isfile() for member in members)
        files = {}
        for member in members:
            extracted = archive.extractfile(member)
            assert extracted is not None
            files[member.name] = extracted.read()
    assert len(files) == len(members)
    return files


def check_image(jpeg: bytes) -> None:
    assert jpeg.startswith(b"\xff\xd8\xff") and jpeg.endswith(b"\xff\xd9")
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG"
        assert image.size == (640, 360)
        assert b"vapixlog test card" in image.info["comment"]
        image.load()


def check_zip(data: bytes, mode: str, server: Server, messages: dict[str, str]) -> None:
    files = zip_files(data)
    if mode == "zip":
        assert list(files) == ["serverreport_cgi.txt"]
    else:
        assert list(files) == ["serverreport_cgi.txt", "serverreport_image.jpg"]
        check_image(files["serverreport_image.jpg"])
    check_text(files["serverreport_cgi.txt"].decode(), server, messages)


@pytest.mark.parametrize("mode", ["zip", "zip_with_image"])
def test_zip(report_server: Server, admin: httpx.Client, messages: dict[str, str], mode: str):
    response = admin.get(CGI, params={"mode": mode})
    check_download(response, "zip")
    check_zip(response.content, mode, report_server, messages)


def check_tar_all(files: dict[str, bytes], messages: dict[str, str]) -> None:
    assert list(files) == TAR_ALL
    text = {name: data.decode() for name, data in files.items()}
    for name, data in text.items():
        assert data == "" or data.endswith("\n"), name
        assert all(parse_line(line) for line in data.splitlines()), name
    # messages: every entry of the boot; the severity files: their level and worse.
    for severity in Severity:
        msg = messages[str(severity.value)]
        assert msg in text["var/log/messages"]
        for name, threshold in THRESHOLDS.items():
            assert (msg in text[name]) == (severity <= threshold), (name, severity)
    assert messages["before"] in text["var/log/messages"]
    for name, threshold in THRESHOLDS.items():
        lines = text[name].splitlines()
        parsed = [parse_line(line) for line in lines]
        assert all(p is not None and p.severity <= threshold for p in parsed), name
        # In the order of the boot's log, which holds them all.
        volatile = text["var/log/messages"].splitlines()
        assert lines == [line for line in volatile if line in set(lines)], name
    persistent = text["var/log/persist-all.log"]
    assert "seeded-before-start" in persistent.splitlines()[0]
    assert messages["during"] in persistent
    assert messages["before"] not in persistent
    assert "torn-tail" not in "".join(text.values())


def test_tar_all(report_server: Server, admin: httpx.Client, messages: dict[str, str], tmp_path):
    response = admin.get(CGI, params={"mode": "tar_all"})
    check_download(response, "tar")
    assert len(response.content) % 512 == 0
    assert response.content.endswith(bytes(1024))
    check_tar_all(tar_files(response.content), messages)
    # persist-all.log is the persistent files joined, in order.
    persistent = tar_files(response.content)["var/log/persist-all.log"]
    on_disk = report_server.persistent_text().encode()
    assert on_disk.startswith(persistent)
    # GNU tar reads it too.
    (tmp_path / "report.tar").write_bytes(response.content)
    listing = subprocess.run(
        ["tar", "-tf", str(tmp_path / "report.tar")], capture_output=True, text=True, check=True
    )
    assert listing.stdout.splitlines() == TAR_ALL


def test_tar_all_without_a_persistent_log(server: Server) -> None:
    response = httpx.get(server.url + CGI, params={"mode": "tar_all"}, auth=AUTH)
    serial = json.loads((server.state_dir / "identity.json").read_text())["serial"]
    check_download(response, "tar", serial)
    assert list(tar_files(response.content)) == [*TAR_ALL[:-2], AUDIT_MEMBER]


def test_tar_kernel_log(admin: httpx.Client) -> None:
    response = admin.get(CGI, params={"mode": "tar_kernel_log"})
    check_download(response, "tar")
    assert tar_files(response.content) == {"kernel.log": b""}  # no kernel of its own


# ----- requests ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_post_form_body(
    report_server: Server, admin: httpx.Client, messages: dict[str, str], mode: str
) -> None:
    # The body wins over the query string.
    response = admin.post(CGI, params={"mode": "bogus"}, data={"mode": mode, "other": "x"})
    if mode == "text":
        check_chunked(response)
        check_text(response.text, report_server, messages)
    elif mode.startswith("zip"):
        check_download(response, "zip")
        check_zip(response.content, mode, report_server, messages)
    else:
        check_download(response, "tar")
        files = tar_files(response.content)
        assert list(files) == (TAR_ALL if mode == "tar_all" else ["kernel.log"])


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


def check_error(response: httpx.Response, status: int, body: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("Error: ") and response.text.endswith(".\n")
    if body is not None:
        assert response.text == body


def test_unknown_mode(admin: httpx.Client) -> None:
    expected = 'Error: unsupported mode "tar".\n'
    check_error(admin.get(CGI, params={"mode": "tar"}), 400, expected)
    check_error(admin.post(CGI, data={"mode": "tar"}), 400, expected)
    # Shown escaped and cut: one line, whatever the mode holds.
    odd = admin.get(CGI, params={"mode": 'a"\n\x1b[31m' + "x" * 100})
    shown = "a\\x22\\x0a\\x1b[31m" + "x" * (64 - 8) + "..."
    check_error(odd, 400, f'Error: unsupported mode "{shown}".\n')
    check_error(admin.get(CGI, params={"mode": "TEXT"}), 400)  # names are case-sensitive


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_other_methods(admin: httpx.Client, method: str) -> None:
    response = admin.request(method, CGI, params={"mode": "tar_all"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    if method != "HEAD":
        check_error(response, 405)


def test_bad_bodies(admin: httpx.Client) -> None:
    check_error(admin.post(CGI, data={"mode": "text", "pad": "x" * 5000}), 413)
    json_body = admin.post(CGI, json={"mode": "tar_all"})
    check_error(json_body, 415)
    assert "application/x-www-form-urlencoded" in json_body.text
    form = {"content-type": "application/x-www-form-urlencoded"}
    check_error(admin.post(CGI, content=b"mode=\xff", headers=form), 400)
    too_many = "&".join(f"f{i}=x" for i in range(100)).encode()
    check_error(admin.post(CGI, content=too_many, headers=form), 400)


# ----- other clients ----------------------------------------------------------------------


def test_curl(report_server: Server, messages: dict[str, str], tmp_path: Path) -> None:
    def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["curl", "-sS", "--fail", "--digest", "-u", f"root:{USERS['root'][1]}", *args],
            capture_output=True, cwd=tmp_path, timeout=60, check=True,
        )  # fmt: skip

    curl("-D", "headers.txt", "-o", "report.txt", report_server.url + CGI)
    # The headers of the digest challenge, then those of the report.
    final = (tmp_path / "headers.txt").read_bytes().decode().split("\r\n\r\n")[-2].lower()
    assert final.startswith("http/1.1 200 ")
    assert "transfer-encoding: chunked" in final and "content-length" not in final
    check_text((tmp_path / "report.txt").read_text(), report_server, messages)
    # -OJ saves a download under the name the device gives it.
    curl("-OJ", report_server.url + CGI + "?mode=zip_with_image")
    (saved,) = tmp_path.glob("Axis_SR_*.zip")
    assert re.fullmatch(rf"Axis_SR_\d{{8}}_\d{{6}}_{SERIAL}\.zip", saved.name)
    check_zip(saved.read_bytes(), "zip_with_image", report_server, messages)
    subprocess.run(["unzip", "-tq", str(saved)], check=True, capture_output=True)
    curl("-OJ", "-d", "mode=tar_all", report_server.url + CGI)
    (tar,) = tmp_path.glob("Axis_SR_*.tar")
    check_tar_all(tar_files(tar.read_bytes()), messages)


def test_ax_devil_device_api(report_server: Server, messages: dict[str, str]) -> None:
    from ax_devil_device_api import Client, DeviceConfig

    config = DeviceConfig.http("127.0.0.1", "root", USERS["root"][1], port=report_server.port)
    with Client(config) as client:
        data = client.device_debug.download_server_report()  # mode=zip_with_image
    check_zip(data, "zip_with_image", report_server, messages)
