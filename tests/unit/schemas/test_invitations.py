"""Invitation settings (loyalty.schemas.invitations): defaults and bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loyalty.schemas.invitations import InvitationSettings, InviteRequest


def test_settings_defaults_match_the_design() -> None:
    # When settings are created empty / Then runs are off, 100 per run, 7 days, 2 reminders
    s = InvitationSettings()
    assert (s.enabled, s.batch_size, s.reminder_after_days, s.max_reminders) == (False, 100, 7, 2)
    assert s.sender is None and s.program_name is None


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("batch_size", [1, 10000], [0, 10001]),
        ("reminder_after_days", [1, 365], [0, 366]),
        ("max_reminders", [0, 10], [-1, 11]),
    ],
)
def test_settings_ranges(field: str, good: list[int], bad: list[int]) -> None:
    # Given the bounds of each numeric setting
    for value in good:
        # When inside / Then accepted
        assert getattr(InvitationSettings.model_validate({field: value}), field) == value
    for value in bad:
        # When outside / Then refused naming the field
        with pytest.raises(ValidationError) as caught:
            InvitationSettings.model_validate({field: value})
        assert caught.value.errors()[0]["loc"] == (field,)


def test_settings_refuse_unknown_fields_and_bad_sender() -> None:
    # When a body holds an unknown field or a sender that is no address / Then refused
    with pytest.raises(ValidationError):
        InvitationSettings.model_validate({"enabeld": True})
    with pytest.raises(ValidationError):
        InvitationSettings.model_validate({"sender": "nobody"})


def test_an_invite_body_is_optional_and_an_override_needs_a_reason() -> None:
    # When empty / Then an ordinary invitation
    assert InviteRequest.model_validate({}).override_cadence is False
    # When overriding with a reason / Then accepted
    body = InviteRequest.model_validate({"override_cadence": True, "reason": "asked at the desk"})
    assert body.reason == "asked at the desk"
    # When overriding without one (or a blank one) / Then refused naming `reason`
    for bad in ({"override_cadence": True}, {"override_cadence": True, "reason": "  "}):
        with pytest.raises(ValidationError) as caught:
            InviteRequest.model_validate(bad)
        assert [e["loc"] for e in caught.value.errors()] == [("reason",)]
    # When a field is unknown / Then refused
    with pytest.raises(ValidationError):
        InviteRequest.model_validate({"override": True})
