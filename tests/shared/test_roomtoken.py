"""Room tokens, pure: mint and verify, expiry at a given ``now``, rotation, tampering."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from shared import roomtoken
from shared.errors import Unauthorized

SECRET = "s" * 32
OLD = "o" * 32
NOW = 1_800_000_000.0


def token(**claims: object) -> str:
    base: dict[str, object] = {"room": "lobby", "name": "Ada", "session": "sess-1"}
    return roomtoken.mint(SECRET, **{**base, **claims}, ttl_s=60, now=NOW)  # type: ignore[arg-type]


def code_of(tok: str, secrets: tuple[str, ...] = (SECRET,), now: float = NOW) -> str:
    with pytest.raises(Unauthorized) as refused:
        roomtoken.verify(tok, secrets, now=now)
    return refused.value.code


def test_a_minted_token_verifies_to_its_claims() -> None:
    claims = roomtoken.verify(token(), [SECRET], now=NOW)
    assert claims == roomtoken.Claims("lobby", "Ada", "sess-1", int(NOW) + 60)
    no_session = roomtoken.mint(SECRET, room="r", name="n", now=NOW)
    assert roomtoken.verify(no_session, [SECRET], now=NOW).session is None


def test_expiry_is_checked_against_the_given_now() -> None:
    tok = token()
    assert roomtoken.verify(tok, [SECRET], now=NOW + 59).expires_at == NOW + 60
    assert code_of(tok, now=NOW + 60) == "token_expired"
    assert code_of(tok, now=NOW + 10_000) == "token_expired"


def test_rotation_accepts_the_previous_secret_until_it_is_dropped() -> None:
    old = roomtoken.mint(OLD, room="lobby", name="Ada", now=NOW)
    new = roomtoken.mint(SECRET, room="lobby", name="Ada", now=NOW)
    assert roomtoken.verify(old, [SECRET, OLD], now=NOW).name == "Ada"
    assert roomtoken.verify(new, [SECRET, OLD], now=NOW).name == "Ada"
    assert code_of(old, (SECRET,)) == "bad_token"


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"), id="signature"),
        pytest.param(
            lambda t: ".".join(
                [
                    t.split(".")[0],
                    _b64({"room": "vip", "name": "Ada", "aud": "lightcone-room", "exp": 2**40}),
                    t.split(".")[2],
                ]
            ),
            id="payload",
        ),  # fmt: skip
        pytest.param(
            lambda t: _b64({"alg": "none", "typ": "JWT"}) + "." + t.split(".")[1] + ".",
            id="alg-none",
        ),
        pytest.param(lambda t: t + "." + t, id="five-parts"),
        pytest.param(lambda t: "x" * 2000, id="too-long"),
        pytest.param(lambda t: "\udfff.\udfff.\udfff", id="lone-surrogates"),
        pytest.param(lambda t: "é.é.é", id="non-ascii"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "a.b.c", id="garbage"),
    ],
)
def test_a_tampered_or_malformed_token_is_refused(forged: object) -> None:
    assert callable(forged)
    assert code_of(forged(token())) == "bad_token"


@pytest.mark.parametrize(
    "claims",
    [
        {"room": "r", "name": "n", "exp": 2**40},  # no audience: not a room token
        {"room": "r", "name": "n", "aud": "other", "exp": 2**40},
        {"room": "r", "name": "n", "aud": "lightcone-room"},  # no expiry
        {"room": 5, "name": "n", "aud": "lightcone-room", "exp": 2**40},
        {"name": "n", "aud": "lightcone-room", "exp": 2**40},
        {"room": "r", "name": "n", "session": 7, "aud": "lightcone-room", "exp": 2**40},
        {"room": "r", "name": "n", "aud": "lightcone-room", "exp": "soon"},
        {"room": "r", "name": "n", "aud": "lightcone-room", "exp": True},
    ],
)
def test_claims_of_the_wrong_shape_are_refused(claims: dict[str, object]) -> None:
    """Correctly signed, but not what a room token says: still refused."""
    assert code_of(jwt.encode(claims, SECRET, algorithm="HS256")) == "bad_token"


def test_a_join_must_match_the_token_exactly() -> None:
    tok = token()
    args = {"room": "lobby", "name": "Ada", "session": "sess-1"}
    assert roomtoken.check_join(tok, [SECRET], **args, now=NOW).room == "lobby"
    for field, other in (("room", "vip"), ("name", "Eve"), ("session", None), ("session", "x")):
        with pytest.raises(Unauthorized) as refused:
            roomtoken.check_join(tok, [SECRET], **{**args, field: other}, now=NOW)  # type: ignore[arg-type]
        assert refused.value.code == "bad_token", field
        assert field in str(refused.value)
    with pytest.raises(Unauthorized) as missing:
        roomtoken.check_join(None, [SECRET], **args, now=NOW)
    assert missing.value.code == "unauthorized"


def test_mint_refuses_a_short_secret_and_a_ttl_out_of_range() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        roomtoken.mint("short", room="r", name="n", now=NOW)
    for ttl_s in (0, roomtoken.MAX_TTL_S + 1):
        with pytest.raises(ValueError, match="ttl_s"):
            roomtoken.mint(SECRET, room="r", name="n", ttl_s=ttl_s, now=NOW)


def test_the_longest_join_fits_the_token_bound() -> None:
    """Room 64, name 32, session 64 characters, all 4-byte UTF-8: under MAX_TOKEN_CHARS."""
    tok = roomtoken.mint(SECRET, room="😀" * 64, name="😀" * 32, session="😀" * 64, now=NOW)
    assert len(tok) <= roomtoken.MAX_TOKEN_CHARS
    assert roomtoken.verify(tok, [SECRET], now=NOW).room == "😀" * 64


def test_a_refusal_never_quotes_the_token() -> None:
    """PyJWT's messages may quote the token's own text (a header's "crit" entries): the
    refusal says only the kind of fault, so no outside text reaches an encoder."""
    header: dict[str, object] = {"alg": "HS256", "typ": "JWT", "crit": ["\udfff\u0000\u202e"]}
    forged = ".".join([_b64(header), token().split(".")[1], "c2ln"])
    with pytest.raises(Unauthorized) as refused:
        roomtoken.verify(forged, [SECRET], now=0)
    assert refused.value.code == "bad_token"
    str(refused.value).encode("utf-8")  # no lone surrogate
    assert "\u0000" not in str(refused.value) and "\u202e" not in str(refused.value)
