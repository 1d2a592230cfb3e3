"""Bulk imports (JSON rows and CSV uploads): dedupe, merge, suppression, checkpoints.

Rows are processed in chunks. Per chunk: one pass of BatchGetItem for the identifiers'
lookup and suppression items (and the matched profiles), then the new and changed
customers packed into TransactWriteItems of up to 100 items (each customer = profile +
lookups + suppression checks + audit event), then one checkpoint transaction that
advances the report and stores the chunk's row outcomes. A re-run resumes after the last
checkpoint, so rows are applied once; a run that is short of time stops after a chunk and
continues through the import queue.
"""
