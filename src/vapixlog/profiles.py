"""Firmware profiles: what differs between AXIS OS versions, as data (`profiles.json`).

A fleet mixes AXIS OS 10, 11 and 12, and a client meets different paths, methods and CGIs on
each (DECISIONS 12). Every version-dependent fact of the specs is a field of
`FirmwareProfile`; the code that acts on it reads the field, never a version number. The
sources and confidence of each value are in docs/fidelity.md ("Firmware profiles").

`serve --firmware 11.10` picks one profile; `serve --devices N --firmware-mix
10.12:1,11.10:1,12.11:2` spreads profiles over N devices by weight (`assign`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PROFILES_PATH = Path(__file__).with_name("profiles.json")


@dataclass(frozen=True)
class RemoteSyslogProfile:
    api_version: str  # what remotesyslog.cgi answers and apidiscovery lists
    formats: tuple[str, ...]  # the `syslogFormat` values it accepts (AXIS from 11.6)


@dataclass(frozen=True)
class FirmwareProfile:
    version: str  # the AXIS OS version the device claims (RELEASE, fwmgr status)
    title: str
    dca: bool  # the Device Configuration APIs (from 11.8): /config/discover, /config/rest
    log_api_versions: tuple[str, ...]  # REST segments of the Log API: v1, v1alpha
    log_api_state: str | None  # the Log API's maturity in discovery: alpha, released
    log_api_version: str | None  # its SemVer version in discovery and model.json
    legacy_put_only: bool  # 11.10 and older: PUT for set and trigger, PATCH/POST get 405
    systemready_version: str  # what systemready.cgi answers: 1.2, 1.4 or 1.5
    brute_force_default: bool  # ActivatePasswordThrottling's default (On from 11.5)
    block_word: str  # the block line's word: Blacklisting up to 11.5, Blocklisting after
    systemlog_text_param: bool  # systemlog.cgi `text=` (from 11.11.45)
    remote_syslog: RemoteSyslogProfile
    apidiscovery_anonymous: bool  # no login for apidiscovery.cgi (9.80 and 10.12 need one)
    apidiscovery_version: str  # apidiscovery.cgi's own API version
    apidiscovery_status: bool  # whether its entries carry `status` (1.1 does, 1.0 did not)
    systemready_discovery_version: str  # what apidiscovery lists for systemready
    audit_log: bool  # the audit log store and auditlog.cgi (from 12.5)

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


class UnknownFirmwareError(ValueError):
    """A version no profile matches; the message lists the known ones."""


@cache
def _catalogue() -> tuple[str, tuple[FirmwareProfile, ...]]:
    document = json.loads(PROFILES_PATH.read_text())
    profiles = tuple(_profile(entry) for entry in document["profiles"])
    return document["default"], profiles


def _profile(entry: dict[str, Any]) -> FirmwareProfile:
    # Exactly the dataclass's fields: a misspelt key in the data fails at start-up.
    names = {f.name for f in dataclasses.fields(FirmwareProfile)}
    if set(entry) != names:
        raise ValueError(f"{PROFILES_PATH.name}: {entry.get('version')}: fields {sorted(entry)}")
    values = dict(entry)
    values["log_api_versions"] = tuple(entry["log_api_versions"])
    syslog = entry["remote_syslog"]
    values["remote_syslog"] = RemoteSyslogProfile(syslog["api_version"], tuple(syslog["formats"]))
    return FirmwareProfile(**values)


def known_versions() -> list[str]:
    return [profile.version for profile in _catalogue()[1]]


def default_profile() -> FirmwareProfile:
    return load_profile(_catalogue()[0])


def load_profile(version: str) -> FirmwareProfile:
    """The profile of `version`: exact (`12.11.77`), or by its release (`12.11`).
    Raises `UnknownFirmwareError` naming the known versions."""
    wanted = version.strip()
    for profile in _catalogue()[1]:
        if wanted in (profile.version, _release(profile.version)):
            return profile
    raise UnknownFirmwareError(
        f"unknown firmware {version!r}; known: {', '.join(known_versions())}"
    )


def _release(version: str) -> str:
    return ".".join(version.split(".")[:2])


def parse_mix(text: str) -> list[tuple[FirmwareProfile, int]]:
    """`10.12:1,11.10:1,12.11:2` as (profile, weight) pairs, in the order given."""
    mix: list[tuple[FirmwareProfile, int]] = []
    for part in text.split(","):
        version, sep, weight = part.strip().partition(":")
        if not sep or not weight.strip().isdigit() or int(weight) < 1:
            raise ValueError(f"invalid mix entry {part.strip()!r}; use VERSION:WEIGHT, weight >= 1")
        profile = load_profile(version)
        if any(profile == seen for seen, _ in mix):
            raise ValueError(f"firmware {profile.version} is in the mix twice")
        mix.append((profile, int(weight)))
    return mix


def assign(mix: list[tuple[FirmwareProfile, int]], count: int) -> list[FirmwareProfile]:
    """One profile per device, in proportion to the weights and interleaved (smooth weighted
    round robin), so every prefix of the fleet is mixed too and the same arguments always
    give the same assignment: `10.12:1,11.10:1,12.11:2` over 4 devices is 12.11, 10.12,
    11.10, 12.11."""
    if not mix:
        raise ValueError("an empty firmware mix")
    total = sum(weight for _, weight in mix)
    current = [0] * len(mix)
    chosen: list[FirmwareProfile] = []
    for _ in range(count):
        for index, (_, weight) in enumerate(mix):
            current[index] += weight
        best = max(range(len(mix)), key=lambda i: (current[i], -i))  # ties: the first listed
        current[best] -= total
        chosen.append(mix[best][0])
    return chosen
