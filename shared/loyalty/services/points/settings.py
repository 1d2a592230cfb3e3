"""A business's points settings (`GET, PUT /v1/settings/points`)."""

from __future__ import annotations

from loyalty.domain.clock import now_iso
from loyalty.domain.principal import ADMINS, BACK_OFFICE, Principal
from loyalty.repository import points as repo
from loyalty.schemas.points import PointsSettings, PointsSettingsView


def get_settings(principal: Principal) -> PointsSettingsView:
    principal.require(BACK_OFFICE)
    stored = repo.get_settings(principal.business_id)
    fields = PointsSettingsView.model_fields
    return PointsSettingsView.model_validate({k: v for k, v in (stored or {}).items() if k in fields})


def put_settings(principal: Principal, body: PointsSettings) -> PointsSettingsView:
    """Replace the settings. Lots already made keep the expiry they were given."""
    principal.require(ADMINS)
    stored = repo.put_settings(principal.business_id, body.model_dump(mode="json"), now_iso())
    fields = PointsSettingsView.model_fields
    return PointsSettingsView.model_validate({k: v for k, v in stored.items() if k in fields})
