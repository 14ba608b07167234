"""A client's next Digest header checked against the shape of its last one
(vapixlog.auth.digest_header.HeaderShape): it must agree with the whole parse, and a request
it lets through must be one the whole check lets through."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from vapixlog.auth import DigestAuthority, MalformedHeader, parse_params
from vapixlog.auth.digest_header import VARYING, _walk, shape_of

REALM = "AXIS_ACCC8E123456"
HA1 = hashlib.md5(f"root:{REALM}:pass".encode()).hexdigest()
URI = "/config/rest/log/v1/writeMessage"
SESSION = ("127.0.0.1", 40000)

# -- the shape against the parse ------------------------------------------------------------

HEX = "0123456789abcdef"
# What a changed value may hold: separators change the parse of an unquoted value (nc),
# quotes and backslashes that of any.
SAFE = HEX + "ABCxyz,= "
WILD = SAFE + '"\\\t'


@st.composite
def header_and_next(draw: st.DrawFn) -> tuple[str, str]:
    """A header in a random order and spacing, then the same with its varying values
    replaced by anything of the same length."""

    def maybe_quoted(text: str) -> str:  # clients quote these; a token is legal too
        return draw(st.sampled_from(["{}", '"{}"'])).format(text)

    values = {
        "username": '"root"',
        "realm": f'"{REALM}"',
        "nonce": maybe_quoted(draw(st.text(HEX, min_size=1, max_size=60))),
        "uri": f'"{URI}"',
        "algorithm": maybe_quoted("MD5"),
        "qop": maybe_quoted("auth"),
        "nc": maybe_quoted(draw(st.text(HEX, min_size=8, max_size=8))),
        "cnonce": maybe_quoted(draw(st.text(HEX, min_size=1, max_size=20))),
        "response": maybe_quoted(draw(st.text(HEX, min_size=32, max_size=32))),
    }
    names = draw(st.permutations(list(values)))
    separators = st.sampled_from([", ", ",", " , ", ",\t"])
    text = "".join(
        (draw(separators) if i else "") + f"{name}={values[name]}" for i, name in enumerate(names)
    )
    following = list(text)
    for _, _, (start, end) in (item for item in _walk(text) if item[0] in VARYING):
        size = end - start
        alphabet = draw(st.sampled_from([HEX, SAFE, WILD]))
        following[start:end] = draw(st.text(alphabet, min_size=size, max_size=size))
    return text, "".join(following)


@given(header_and_next())
def test_values_agree_with_the_parse(pair: tuple[str, str]) -> None:
    text, following = pair
    shape = shape_of(text)
    assert shape is not None and shape.params == parse_params(text)
    assert shape.values(text) == tuple(parse_params(text)[name] for name in VARYING)
    found = shape.values(following)
    if found is None:
        return  # the whole path decides
    expected = dict(shape.params, **dict(zip(VARYING, found, strict=True)))
    assert parse_params(following) == expected  # never a different reading, never malformed


def test_a_changed_value_that_changes_the_parse_is_not_taken() -> None:
    text = (
        f'username="root", realm="{REALM}", nonce="abc", uri="{URI}", qop=auth, nc=00000001, '
        f'cnonce="abcd", response="{"0" * 32}"'
    )
    shape = shape_of(text)
    assert shape is not None
    assert shape.values(text.replace("abcd", "ab,c")) is not None  # inside quotes: a value
    assert shape.values(text.replace("abcd", 'ab"c')) is None  # a quote ends the value
    assert shape.values(text.replace("00000001", "0000000g")) is None  # not hex
    assert shape.values(text.replace('"root"', '"toor"')) is None  # outside the values
    assert shape.values(text + " ") is None
    assert shape_of(text.replace("abcd", 'ab\\"')) is None  # escapes: parsed, never shaped
    # An unquoted (token) cnonce: a space or a comma in its place would be read otherwise.
    token = shape_of(text.replace('cnonce="abcd"', "cnonce=abcdefgh"))
    assert token is not None
    for changed in ("ab cdefg", "a,qop=zz", "a,x=yyyy"):
        assert token.values(text.replace('cnonce="abcd"', f"cnonce={changed}")) is None
    assert token.values(text.replace('cnonce="abcd"', "cnonce=a=b:cdef")) is not None
    assert shape_of(text.replace("qop=auth, ", "")) is not None
    assert shape_of(text.replace("nc=00000001, ", "")) is None


# -- the authority: what the shape lets through, the whole check would -----------------------


def lookup(name: str, algorithm: str) -> str | None:
    return HA1 if (name, algorithm) == ("root", "MD5") else None


def header(nonce: str, nc: int, cnonce: str = "c0ffee00", *, ha1: str = HA1, uri: str = URI) -> str:
    ha2 = hashlib.md5(f"POST:{uri}".encode()).hexdigest()
    ncv = f"{nc:08x}"
    response = hashlib.md5(f"{ha1}:{nonce}:{ncv}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'username="root", realm="{REALM}", nonce="{nonce}", uri="{uri}", algorithm=MD5, '
        f'response="{response}", qop=auth, nc={ncv}, cnonce="{cnonce}"'
    )


def verify(authority: DigestAuthority, text: str, uri: str = URI) -> tuple[bool, str]:
    result = authority.verify(text, method="POST", uri=uri, lookup=lookup, session=SESSION)
    return result.ok, result.reason


def test_a_session_s_next_headers_are_checked_in_full_measure() -> None:
    authority = DigestAuthority(REALM)
    nonce = authority.new_nonce()
    assert verify(authority, header(nonce, 1)) == (True, "")
    assert SESSION in authority._shapes  # the next ones take the shape
    assert verify(authority, header(nonce, 2)) == (True, "")
    assert verify(authority, header(nonce, 2)) == (False, "replayed nonce count")
    assert verify(authority, header(nonce, 3, ha1="0" * 32)) == (
        False,
        "wrong password or unknown user",
    )
    assert verify(authority, header(nonce, 4), uri=URI + "?x") == (
        False,
        "uri does not match request",
    )
    # Another nonce of the same length: the shape still fits; the nonce is checked.
    other = authority.new_nonce()
    assert verify(authority, header(other, 1)) == (True, "")
    forged = other[:-1] + ("0" if other[-1] != "0" else "1")
    assert verify(authority, header(forged, 1)) == (False, "stale nonce")
    # A value that would change the parse is refused as the parse refuses it.
    quoted = header(nonce, 5, cnonce='c0ff"e00')
    result = authority.verify(quoted, method="POST", uri=URI, lookup=lookup, session=SESSION)
    assert not result.ok and result.reason.startswith("malformed Digest header")
    try:
        parse_params(quoted)
    except MalformedHeader:
        pass
    else:
        raise AssertionError("the parse should refuse it too")
    assert verify(authority, header(nonce, 6)) == (True, "")
