"""Ranked-statuses use cases (docs/design.md#ranked-statuses), by section: definitions and
ranking, assignment (one, bulk), entitlements, background jobs and the expiry schedule.
`rules` applies rule-driven changes to a profile (also used by customer edits)."""
