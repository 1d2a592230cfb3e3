"""Who may act on what (loyalty.domain.principal)."""

from __future__ import annotations

import pytest

from loyalty.api.auth import principal_from_claims
from loyalty.domain.errors import Forbidden, NotFound
from loyalty.domain.principal import BACK_OFFICE


def test_customers_act_only_on_themselves() -> None:
    me = principal_from_claims({"sub": "c1", "business_id": "b1", "role": "customer"})
    assert me.require_self_or("c1", BACK_OFFICE) is me
    # Another customer's id looks like it does not exist (no enumeration)
    with pytest.raises(NotFound):
        me.require_self_or("c2", BACK_OFFICE)
    with pytest.raises(Forbidden):
        me.require(BACK_OFFICE)
