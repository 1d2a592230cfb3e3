"""Points use cases (docs/design.md#points-ledger), by section: `settings`, `commands` (earn,
return, redeem, capture, void, reverse, adjust), `reads` (balance, ledger, lots), `run` (the
scheduled activation, expiry and reminders), `transfers` (merges and exclusion)."""
