"""Claims to a principal (loyalty.api.auth): what the JWT authorizer's claims must hold."""

from __future__ import annotations

import pytest

from loyalty.api.auth import principal_from_claims
from loyalty.domain.errors import Unauthorized
from loyalty.domain.principal import BACK_OFFICE, Role


def test_claims_become_a_principal() -> None:
    principal = principal_from_claims({"sub": "u1", "business_id": "b1", "role": "staff"})
    assert principal.role is Role.STAFF
    assert principal.require(BACK_OFFICE) is principal


@pytest.mark.parametrize(
    "claims", [None, {}, {"sub": "u", "business_id": "b"}, {"sub": "u", "business_id": "b", "role": "root"}]
)
def test_missing_or_bad_claims_are_unauthorized(claims: dict[str, str] | None) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims(claims)
