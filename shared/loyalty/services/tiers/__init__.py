"""Tier use cases (docs/design.md#tiers): the ladder, a customer's tier and manual tier, the
retention check, re-evaluation after the ladder changed, and the move a purchase makes."""
