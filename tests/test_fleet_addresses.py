"""`serve --devices N --address-per-device` (DECISIONS 14): each device on its own loopback
address and the same port, as a real fleet has one address per device; TLS certificates name
each device's address."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from servers import USERS, Server, free_port_block, run_cli
from vapixlog.server import fleet_addresses

ADMIN = ("root", USERS["root"][1])
API = "/config/rest/log/v1/persistent/enabled"


class FleetServer(Server):
    """A fleet whose first device answers at 127.1.0.1 (what `start` waits for)."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.1.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if "--tls-self-signed" in self.extra_args else "http"


def test_addresses_skip_network_and_broadcast_octets() -> None:
    addresses = fleet_addresses(300)
    assert addresses[:2] == ["127.1.0.1", "127.1.0.2"]
    assert "127.1.0.255" not in addresses and "127.1.1.0" not in addresses
    assert addresses[254] == "127.1.1.1" and len(set(addresses)) == 300
    with pytest.raises(ValueError, match="do not fit"):
        fleet_addresses(3, first="127.255.255.254")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetServer]:
    state = tmp_path_factory.mktemp("fleet") / "state"
    server = FleetServer(
        state,
        port=free_port_block(1),
        extra_args=["--devices", "3", "--address-per-device", "--tls-self-signed"],
    )
    server.start()
    yield server
    if server.proc:
        server.stop()


def test_each_device_has_its_own_address_and_certificate(fleet: FleetServer) -> None:
    urls = (fleet.state_dir / "devices.txt").read_text().split()
    assert urls == [f"https://127.1.0.{n}:{fleet.port}" for n in (1, 2, 3)]
    realms = set()
    for url in urls:
        host = url.split("//")[1].split(":")[0]
        # The certificate this address presents names it.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((host, fleet.port), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
        assert host in [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)]
        challenge = httpx.get(url + API, verify=False, timeout=10)
        realms.add(challenge.headers["www-authenticate"].split('realm="')[1].split('"')[0])
        ok = httpx.get(url + API, auth=httpx.DigestAuth(*ADMIN), verify=False, timeout=10)
        assert ok.status_code == 200, ok.text
    assert len(realms) == 3  # three devices, not one device on three addresses


def test_only_loopback_addresses_are_given(tmp_path: Path) -> None:
    result = run_cli(
        "serve", "--devices", "2", "--address-per-device", "--host", "0.0.0.0",
        state_dir=tmp_path / "state",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--address-per-device gives loopback addresses" in result.stderr
