"""Every kind of fault, through real clients (httpx, curl, a raw socket), each in the
dialect of the endpoint that fails."""

import random
import shutil
import socket
import subprocess
import time

import httpx
import pytest

LOG = "/config/rest/log/v1"
READY = "/axis-cgi/systemready.cgi"
FIRMWARE = "/axis-cgi/firmwaremanagement.cgi"
SYSTEMLOG = "/axis-cgi/systemlog.cgi"
CALL = {"apiVersion": "1", "context": "abc", "method": "systemready"}


def client(device) -> httpx.Client:
    return httpx.Client(base_url=device.url, auth=device.admin, timeout=10)


def write(device, msg: str) -> httpx.Response:
    return client(device).post(f"{LOG}/writeMessage", json={"data": {"msg": msg}})


def logged(device) -> str:
    return client(device).get(SYSTEMLOG).text


def raw_get(device, path: str) -> bytes:
    """What a GET receives, byte for byte, until the server closes (Basic auth)."""
    import base64

    token = base64.b64encode(":".join(device.admin).encode()).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {device.url.split('//')[1]}\r\n"
        f"Authorization: Basic {token}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", device.port), timeout=5) as sock:
        sock.sendall(request.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- an error status, in each dialect ------------------------------------------------


def test_status_on_the_dca_api_is_a_dca_envelope(axis_device):
    axis_device.set_faults("writeMessage:status=503")
    reply = write(axis_device, "lost")
    assert reply.status_code == 503
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["retry-after"] == "1"
    error = reply.json()
    assert error["status"] == "error"
    assert error["error"]["code"] == 10  # the DCA's code for 503
    assert "lost" not in logged(axis_device)  # not handled


def test_status_on_a_json_rpc_cgi_is_http_200_with_an_error(axis_device):
    axis_device.set_faults("systemready:status=500")
    reply = httpx.post(axis_device.url + READY, json=CALL)
    assert reply.status_code == 200
    body = reply.json()
    assert body["apiVersion"] == "1.5"
    assert body["context"] == "abc"
    assert body["method"] == "systemready"
    assert body["error"]["code"] == 500
    assert "data" not in body


def test_a_reboot_refused_by_a_fault_does_not_happen(axis_device):
    axis_device.set_faults("reboot:status=423")
    before = axis_device.boot_id
    status = client(axis_device).post(FIRMWARE, json={"apiVersion": "1.0", "method": "status"})
    assert "data" in status.json()  # only the reboot method is faulted
    reboot = client(axis_device).post(FIRMWARE, json={"apiVersion": "1.0", "method": "reboot"})
    assert reboot.status_code == 200
    assert reboot.json()["error"]["code"] == 423
    assert reboot.json()["method"] == "reboot"
    time.sleep(0.3)
    assert axis_device.boot_id == before


def test_status_on_a_plain_cgi_is_plain_text(axis_device):
    axis_device.set_faults("GET /axis-cgi/*log.cgi:status=500", "report:status=503")
    reply = client(axis_device).get(SYSTEMLOG)
    assert reply.status_code == 500
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.text == "Internal Server Error (injected fault)\n"
    report = client(axis_device).get("/axis-cgi/serverreport.cgi")
    assert (report.status_code, report.headers["content-type"][:10]) == (503, "text/plain")


# -- latency, resets, truncated and slow bodies ----------------------------------------


def test_delay(axis_device):
    axis_device.set_faults("systemready:delay=0.4")
    start = time.monotonic()
    assert httpx.post(axis_device.url + READY, json=CALL).json()["data"]["systemready"] == "yes"
    assert time.monotonic() - start >= 0.4


def test_reset_request_is_never_handled(axis_device):
    axis_device.set_faults("writeMessage:reset=request")
    with pytest.raises(httpx.TransportError):
        write(axis_device, "never")
    axis_device.clear_faults()
    assert "never" not in logged(axis_device)


def test_reset_before_the_head_is_handled_but_never_answered(axis_device):
    axis_device.set_faults("writeMessage:reset=before")
    with pytest.raises(httpx.TransportError):
        write(axis_device, "done but unanswered")
    axis_device.clear_faults()
    assert "done but unanswered" in logged(axis_device)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_reset_after_the_head_through_curl(axis_device):
    axis_device.set_faults("systemlog:reset=after")
    user, password = axis_device.admin
    run = subprocess.run(
        ["curl", "-sS", "-i", "-u", f"{user}:{password}", axis_device.url + SYSTEMLOG],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert run.stdout.startswith("HTTP/1.1 200")  # the head came
    assert run.returncode == 56, run.stderr  # then: "Recv failure: Connection reset by peer"
    assert "reset" in run.stderr.lower()


def test_reset_after_the_head_through_httpx(axis_device):
    axis_device.set_faults("systemlog:reset=after")
    with client(axis_device).stream("GET", SYSTEMLOG) as reply:
        assert reply.status_code == 200
        with pytest.raises(httpx.TransportError):
            reply.read()


def test_truncated_body(axis_device):
    axis_device.set_faults("systemlog:truncate=10")
    with pytest.raises(httpx.RemoteProtocolError):
        client(axis_device).get(SYSTEMLOG)
    raw = raw_get(axis_device, SYSTEMLOG)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"200 OK" in head
    assert len(body) == 10 or b"chunked" in head.lower()


def test_slow_body(axis_device):
    full = client(axis_device).get(SYSTEMLOG).content
    rate = max(1, len(full) * 2)  # about half a second for the whole body
    axis_device.set_faults(f"systemlog:slow={rate}")
    start = time.monotonic()
    body = client(axis_device).get(SYSTEMLOG).content
    assert time.monotonic() - start >= 0.4
    assert body.startswith(full[:100])


# -- the device: reboots and reports -----------------------------------------------------


def reboot_over_http(device) -> None:
    reply = client(device).post(FIRMWARE, json={"apiVersion": "1.0", "method": "reboot"})
    assert reply.json()["data"] == {}


def wait_up(device, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return httpx.post(device.url + READY, json=CALL, timeout=1).json()["data"]
        except httpx.TransportError:
            time.sleep(0.05)
    return None


def test_a_reboot_that_never_comes_back(axis_device):
    axis_device.set_faults("reboot:hang")
    reboot_over_http(axis_device)
    time.sleep(0.3)
    assert wait_up(axis_device, 1.5) is None  # downtime is 0.2 s without the fault


def test_a_reboot_that_takes_its_time(axis_device):
    axis_device.set_faults("reboot:downtime=1.2")
    before = axis_device.boot_id
    start = time.monotonic()
    reboot_over_http(axis_device)
    time.sleep(0.2)
    state = wait_up(axis_device, 5)
    assert state is not None and state["bootid"] != before
    assert time.monotonic() - start >= 1.2


def test_a_reboot_that_keeps_the_boot_id(axis_device):
    axis_device.set_faults("reboot:keep-bootid")
    before = axis_device.boot_id
    reboot_over_http(axis_device)
    time.sleep(0.3)
    state = wait_up(axis_device, 5)
    assert state is not None and state["bootid"] == before
    status = client(axis_device).post(FIRMWARE, json={"apiVersion": "1.0", "method": "status"})
    assert status.json()["data"]["resetSource"] == "reboot"  # it did reboot


def test_a_report_that_takes_its_time(axis_device):
    axis_device.set_faults("report:takes=0.6")
    start = time.monotonic()
    with client(axis_device).stream("GET", "/axis-cgi/serverreport.cgi") as reply:
        head_after = time.monotonic() - start
        body = reply.read()
    assert head_after < 0.5 <= 0.6 <= time.monotonic() - start
    assert reply.status_code == 200 and body


# -- when --------------------------------------------------------------------------------


def outcomes(device, n: int) -> list[bool]:
    """Which of `n` systemready calls failed."""
    with httpx.Client(base_url=device.url) as http:
        return ["error" in http.post(READY, json=CALL).json() for _ in range(n)]


def test_first_n_times(axis_device):
    axis_device.set_faults("systemready:status=503,first=2")
    assert outcomes(axis_device, 5) == [True, True, False, False, False]


def test_every_nth_time(axis_device):
    axis_device.set_faults("systemready:status=503,every=3")
    assert outcomes(axis_device, 7) == [False, False, True, False, False, True, False]


def test_seeded_probability_is_deterministic(axis_fleet):
    first, second = axis_fleet(2, faults=["systemready:status=503,p=0.5,seed=42"])
    seen = outcomes(first, 40)
    assert seen == outcomes(second, 40)  # the same on another device (and on every run)
    draws = random.Random(42)
    assert seen == [draws.random() < 0.5 for _ in range(40)]
    assert 5 < sum(seen) < 35
    first.set_faults("systemready:status=503,p=0.5,seed=43")
    assert outcomes(first, 40) != seen
