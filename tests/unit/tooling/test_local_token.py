"""Local JWTs: what `make token` prints is what the local stack's authorizer accepts."""

from __future__ import annotations

import jwt
import pytest

from local.token import TokenError, main, make_token, verify

KEY = "a-secret-long-enough-for-hmac-sha256"


def test_a_made_token_verifies_to_its_claims() -> None:
    # Given a token for a staff user of business demo
    token = make_token("demo", "staff", "u-7", ttl=60)
    # When the stand-in authorizer verifies it
    claims = verify(f"Bearer {token}")
    # Then the claims are where API Gateway would take them from
    assert (claims["sub"], claims["business_id"], claims["role"]) == ("u-7", "demo", "staff")
    assert claims["exp"] > claims["iat"]


def test_the_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a token signed while the stack used another secret
    monkeypatch.setenv("LOYALTY_LOCAL_JWT_SECRET", "first-secret")
    token = make_token("demo", "admin")
    # When the secret changes, then the old token is refused
    monkeypatch.setenv("LOYALTY_LOCAL_JWT_SECRET", "second-secret")
    with pytest.raises(TokenError, match="invalid token"):
        verify(f"Bearer {token}")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Token abc", "Bearer"),
        ("Bearer ", "Bearer"),
        ("Bearer abc.def.ghi", "invalid token"),
    ],
)
def test_malformed_headers_are_refused(header: str | None, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        verify(header)


def test_an_expired_token_is_refused() -> None:
    with pytest.raises(TokenError, match="expired"):
        verify(f"Bearer {make_token('demo', 'admin', ttl=-5)}")


def test_a_token_without_a_role_is_refused() -> None:
    # Given a correctly signed token that lacks the role claim
    token = jwt.encode({"sub": "x", "business_id": "demo"}, KEY, algorithm="HS256")
    # Then it is refused, naming the claim
    with pytest.raises(TokenError, match="role"):
        verify(f"Bearer {token}", key=KEY)


def test_the_cli_prints_a_token_for_the_given_claims(capsys: pytest.CaptureFixture[str]) -> None:
    # When `python -m local.token` runs
    main(["--business", "acme", "--role", "customer", "--sub", "c-1"])
    # Then it prints one token carrying those claims
    printed = capsys.readouterr().out.strip()
    claims = verify(f"Bearer {printed}")
    assert (claims["business_id"], claims["role"], claims["sub"]) == ("acme", "customer", "c-1")
