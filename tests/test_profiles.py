"""Firmware profiles as data (`vapixlog/profiles.json`): loading, the errors for unknown
versions and bad mixes, the deterministic assignment of a mix, and that every profile agrees
with the version thresholds the specs give (docs/fidelity.md, "Firmware profiles")."""

from __future__ import annotations

from collections import Counter

import pytest

from vapixlog.profiles import (
    FirmwareProfile,
    UnknownFirmwareError,
    assign,
    default_profile,
    known_versions,
    load_profile,
    parse_mix,
)


def version_tuple(profile: FirmwareProfile) -> tuple[int, ...]:
    return tuple(int(part) for part in profile.version.split("."))


def test_the_default_is_the_version_of_the_specs_captures() -> None:
    profile = default_profile()
    assert profile.version == "12.11.77"
    assert profile.systemready_version == "1.5" and profile.audit_log
    assert profile.log_api_versions == ("v1", "v1alpha") and not profile.legacy_put_only


def test_versions_load_exactly_or_by_release() -> None:
    assert known_versions() == ["10.12", "11.10", "12.4", "12.11.77"]
    assert load_profile("12.11").version == "12.11.77"
    assert load_profile(" 11.10 ").version == "11.10"
    assert load_profile("10.12") is load_profile("10.12")  # loaded once


@pytest.mark.parametrize("version", ["9.80", "12", "12.11.78", "", "latest"])
def test_an_unknown_version_names_the_known_ones(version: str) -> None:
    with pytest.raises(UnknownFirmwareError) as error:
        load_profile(version)
    assert str(error.value) == (
        f"unknown firmware {version!r}; known: 10.12, 11.10, 12.4, 12.11.77"
    )


def test_a_mix_keeps_its_order_and_weights() -> None:
    mix = parse_mix("10.12:1, 11.10:1,12.11:2")
    assert [(profile.version, weight) for profile, weight in mix] == [
        ("10.12", 1),
        ("11.10", 1),
        ("12.11.77", 2),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.12", "invalid mix entry '10.12'"),
        ("10.12:0", "invalid mix entry '10.12:0'"),
        ("10.12:x", "invalid mix entry '10.12:x'"),
        ("10.12:1,", "invalid mix entry ''"),
        ("9.80:1", "unknown firmware '9.80'; known: 10.12"),
        ("12.11:1,12.11.77:2", "firmware 12.11.77 is in the mix twice"),
    ],
)
def test_bad_mixes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        parse_mix(text)


def test_a_mix_is_assigned_interleaved_and_in_proportion() -> None:
    mix = parse_mix("10.12:1,11.10:1,12.11:2")
    four = [profile.version for profile in assign(mix, 4)]
    assert four == ["12.11.77", "10.12", "11.10", "12.11.77"]
    assert [p.version for p in assign(mix, 4)] == four  # the same every time
    counts = Counter(profile.version for profile in assign(mix, 1000))
    assert counts == {"12.11.77": 500, "10.12": 250, "11.10": 250}
    # Every prefix is mixed too: the first 4k devices hold each version in proportion.
    for k in range(1, 10):
        prefix = Counter(p.version for p in assign(mix, 4 * k))
        assert prefix == {"12.11.77": 2 * k, "10.12": k, "11.10": k}
    assert assign(mix, 0) == []
    with pytest.raises(ValueError):
        assign([], 3)


@pytest.mark.parametrize("version", ["10.12", "11.10", "12.4", "12.11.77"])
def test_each_profile_follows_the_specs_thresholds(version: str) -> None:
    profile = load_profile(version)
    v = version_tuple(profile)
    # dca-framework.md §1, §3: DCA from 11.8; PUT instead of PATCH/POST up to 11.10.
    assert profile.dca is (v >= (11, 8))
    assert bool(profile.log_api_versions) is profile.dca
    assert profile.legacy_put_only is ((11, 8) <= v <= (11, 10))
    if profile.dca:
        released = v >= (12,)
        assert profile.log_api_versions == (("v1", "v1alpha") if released else ("v1alpha",))
        assert profile.log_api_state == ("released" if released else "alpha")
    # device-security.md §2, §6: brute-force protection on from 11.5; the word changes at
    # 11.6; apidiscovery.cgi needs a login on 10.12.
    assert profile.brute_force_default is (v >= (11, 5))
    assert profile.block_word == ("Blocklisting" if v >= (11, 6) else "Blacklisting")
    assert profile.apidiscovery_anonymous is (v[:2] != (10, 12))
    # server-report.md §3: systemlog.cgi text= from 11.11.45.
    assert profile.systemlog_text_param is (v >= (11, 11, 45))
    # remote-syslog.md §1, §3: the API from 10.1, the AXIS format from 11.6.
    assert ("AXIS" in profile.remote_syslog.formats) is (v >= (11, 6))
    assert set(profile.remote_syslog.formats) <= {"AXIS", "RFC3164", "RFC5424"}
    # audit-log.md §1: the audit log from 12.5.
    assert profile.audit_log is (v >= (12, 5))
    # system-ready.md §4: 1.2 has no bootid; 1.5 is what 12.11.77 answers.
    assert profile.systemready_version in ("1.2", "1.4", "1.5")
    assert (profile.systemready_version == "1.5") is (v >= (12, 11))
