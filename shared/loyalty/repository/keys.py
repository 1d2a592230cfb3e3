"""Every DynamoDB key of the single table is built here, and only here.

Partitions are prefixed with the business id so a tenant can never read another's
items by construction. GSIs are overloaded; see the README's key design table.
"""

from __future__ import annotations

import hashlib

from loyalty.config import settings
from loyalty.domain.search import PREFIX_LETTERS
from loyalty.domain.suppression import identifier_hash
from loyalty.domain.webhooks.events import CARD_SK, PROFILE_SK

LOOKUP_SK = "LOOKUP"

REPORT_SK = "REPORT"
TOKEN_SK = "TOKEN"
SUPPRESS_SK = "SUPPRESS"
INVITATION_SETTINGS_SK = "SETTINGS#INVITATIONS"
STATUS_CATALOG_SK = "STATUSDEFS"
# `Z#` sorts history after everything else in a customer partition (profile, card links,
# status assignments), so a partition read lists those first.
EVENT_SK_PREFIX = "Z#EVT#"

ENTITY_CUSTOMER = "customer"
ENTITY_LOOKUP = "lookup"
ENTITY_CARD = "card"
ENTITY_STATUS_ASSIGNMENT = "status_assignment"
ENTITY_STATUS_CATALOG = "status_catalog"
ENTITY_STATUS_JOB = "status_job"
ENTITY_EVENT = "audit_event"
ENTITY_SUPPRESSION = "suppression"
ENTITY_INVITATION_SETTINGS = "invitation_settings"
ENTITY_INVITATION_TOKEN = "invitation_token"
ENTITY_WEBHOOK = "webhook"
ENTITY_DELIVERY = "webhook_delivery"


def business_pk(business_id: str) -> str:
    return f"B#{business_id}"


def customer_pk(business_id: str, customer_id: str) -> str:
    return f"B#{business_id}#C#{customer_id}"


def customer_key(business_id: str, customer_id: str) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": PROFILE_SK}


def event_sk(version: int) -> str:
    # Zero-padded so the sort order is the order changes were applied.
    return f"{EVENT_SK_PREFIX}{version:010d}"


def event_key(business_id: str, customer_id: str, version: int) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": event_sk(version)}


def status_assignment_sk(code: str) -> str:
    return f"STATUS#{code}"


# Uniqueness lookups: one item per identifier, written in the profile's transaction.
_LOOKUP_PREFIX = {"email": "EMAIL", "phone": "PHONE", "external_id": "EXT", "device_id": "DEVICE"}


def lookup_key(business_id: str, kind: str, value: str) -> dict[str, str]:
    return {"PK": f"B#{business_id}#{_LOOKUP_PREFIX[kind]}#{value}", "SK": LOOKUP_SK}


def card_key(business_id: str, number: str) -> dict[str, str]:
    return {"PK": f"B#{business_id}#CARD#{number}", "SK": CARD_SK}


def import_pk(business_id: str, import_id: str) -> str:
    return f"B#{business_id}#IMPORT#{import_id}"


def import_key(business_id: str, import_id: str) -> dict[str, str]:
    return {"PK": import_pk(business_id, import_id), "SK": REPORT_SK}


def import_rows_key(business_id: str, import_id: str, first_row: int) -> dict[str, str]:
    """A chunk's row outcomes (kilobytes each): a partition per chunk, not the report's, so a
    large import's writes do not pile onto one key."""
    return {"PK": f"{import_pk(business_id, import_id)}#ROW#{first_row:09d}", "SK": IMPORT_ROWS_SK}


ENTITY_IMPORT = "import"
# One item per processed chunk of an import: the outcome of each of its rows.
ENTITY_IMPORT_ROWS = "import_rows"
IMPORT_ROWS_SK = "ROWS"


def invitation_token_key(token_hash: str) -> dict[str, str]:
    return {"PK": f"INVTOKEN#{token_hash}", "SK": TOKEN_SK}


def invitation_settings_key(business_id: str) -> dict[str, str]:
    return {"PK": business_pk(business_id), "SK": INVITATION_SETTINGS_SK}


def status_catalog_key(business_id: str) -> dict[str, str]:
    return {"PK": business_pk(business_id), "SK": STATUS_CATALOG_SK}


def status_job_key(business_id: str, job_id: str) -> dict[str, str]:
    # Background status jobs (rule evaluation, re-rank, definition removal) and their progress.
    return {"PK": business_pk(business_id), "SK": f"STATUSJOB#{job_id}"}


def status_expiry_sk(expires_at: str, business_id: str, customer_id: str, code: str) -> str:
    return f"{expires_at}#{business_id}#{customer_id}#{code}"


def suppression_key(business_id: str, digest: str) -> dict[str, str]:
    return {"PK": f"B#{business_id}#SUPPRESS#{digest}", "SK": SUPPRESS_SK}


def suppression_key_of(business_id: str, kind: str, value: str) -> dict[str, str]:
    """The suppression item of an identifier: keyed by its keyed hash, never the value."""
    return suppression_key(business_id, identifier_hash(settings().suppression_key, business_id, kind, value))


def webhook_key(business_id: str, webhook_id: str) -> dict[str, str]:
    return {"PK": business_pk(business_id), "SK": f"WEBHOOK#{webhook_id}"}


WEBHOOK_SK_PREFIX = "WEBHOOK#"
DELIVERY_SK_PREFIX = "DELIVERY#"


def webhook_delivery_pk(business_id: str, webhook_id: str) -> str:
    return f"B#{business_id}#WEBHOOK#{webhook_id}"


def webhook_delivery_key(business_id: str, webhook_id: str, sent_at: str, delivery_id: str) -> dict[str, str]:
    return {"PK": webhook_delivery_pk(business_id, webhook_id), "SK": f"DELIVERY#{sent_at}#{delivery_id}"}


# --- write sharding ----------------------------------------------------------------------
# A partition key takes about 1,000 write units a second. Each per-business index is spread
# over several keys by a suffix derived from the customer id, so a business's imports, rule
# re-evaluations and invitation runs spread over all of them (README#capacity); readers
# query every shard in parallel and merge (repository.base.merged_query). The counts are
# part of the key design: changing one re-keys the index (README#migrating-a-deployed-table).
PROGRAM_STATUS_SHARDS = 16  # one write per customer created or changed
STATUS_HOLDER_SHARDS = 16  # one write per assignment
# A claimed invitation moves its entry within the shard (a delete and a put): twice as many.
INVITE_DUE_SHARDS = 32
# Shared by every business: spread wider than one business needs.
STATUS_EXPIRY_SHARDS = 32
IDEMPOTENCY_SHARDS = 16


def shard_of(customer_id: str, shards: int) -> int:
    return int(hashlib.blake2b(customer_id.encode(), digest_size=4).hexdigest(), 16) % shards


def _sharded(base: str, shard: int) -> str:
    return f"{base}#{shard:02d}"


# --- GSI1: name words, holders of a status label ------------------------------------------
GSI1 = "GSI1"
NAME_WORD_SK_PREFIX = "NAME#"
ENTITY_NAME_WORD = "name_word"
# The name index is keyed by a word's first letters (loyalty.domain.search): one partition
# answers a search for any prefix of two letters or more, and a business's words spread over
# hundreds of keys.


def name_word_key(business_id: str, customer_id: str, word: str) -> dict[str, str]:
    """One item per word of a listed customer's name, in the customer's partition."""
    return {"PK": customer_pk(business_id, customer_id), "SK": f"{NAME_WORD_SK_PREFIX}{word}"}


def name_index_pk(business_id: str, word: str) -> str:
    return f"B#{business_id}#NAME#{word[:PREFIX_LETTERS]}"


def name_index_sk(word: str, words: list[str], customer_id: str) -> str:
    # Matches sort by the word found, then by the whole name.
    return f"{word}#{' '.join(words)}#{customer_id}"


def _status_holder_base(business_id: str, code: str) -> str:
    return f"B#{business_id}#SC#{code}"


def status_holder_pk(business_id: str, code: str, customer_id: str) -> str:
    return _sharded(_status_holder_base(business_id, code), shard_of(customer_id, STATUS_HOLDER_SHARDS))


def status_holder_pks(business_id: str, code: str) -> list[str]:
    return [_sharded(_status_holder_base(business_id, code), s) for s in range(STATUS_HOLDER_SHARDS)]


# --- GSI2: customers by program status (sparse), businesses with invitations on ---------
GSI2 = "GSI2"


def _program_status_base(business_id: str, status: str) -> str:
    return f"B#{business_id}#PS#{status}"


def program_status_pk(business_id: str, status: str, customer_id: str) -> str:
    base = _program_status_base(business_id, status)
    return _sharded(base, shard_of(customer_id, PROGRAM_STATUS_SHARDS))


def program_status_pks(business_id: str, status: str) -> list[str]:
    return [_sharded(_program_status_base(business_id, status), s) for s in range(PROGRAM_STATUS_SHARDS)]


def program_status_sk(created_at: str, customer_id: str) -> str:
    return f"{created_at}#{customer_id}"


INVITATIONS_ENABLED_PK = "INVITATIONS#ENABLED"


def status_expiry_pk(customer_id: str) -> str:
    return _sharded("STATUS#EXPIRY", shard_of(customer_id, STATUS_EXPIRY_SHARDS))


def status_expiry_pks() -> list[str]:
    return [_sharded("STATUS#EXPIRY", s) for s in range(STATUS_EXPIRY_SHARDS)]


# --- GSI3: customers due an invitation or a reminder (sparse) --------------------------
GSI3 = "GSI3"


def invite_due_pk(business_id: str, customer_id: str) -> str:
    return _sharded(f"B#{business_id}#INVITE_DUE", shard_of(customer_id, INVITE_DUE_SHARDS))


def invite_due_pks(business_id: str) -> list[str]:
    return [_sharded(f"B#{business_id}#INVITE_DUE", s) for s in range(INVITE_DUE_SHARDS)]


def invite_due_sk(due_at: str, customer_id: str) -> str:
    return f"{due_at}#{customer_id}"


# --- idempotency records (Powertools) ---------------------------------------------------
# Per business, so an exclusion can find and purge the stored answers that quote a person;
# spread by the request's own key, so a replay finds its record in the same shard.


def idempotency_pk(business_id: str, request_key: str) -> str:
    return _sharded(f"IDEMPOTENCY#http#{business_id}", shard_of(request_key, IDEMPOTENCY_SHARDS))


def idempotency_pks(business_id: str) -> list[str]:
    return [_sharded(f"IDEMPOTENCY#http#{business_id}", s) for s in range(IDEMPOTENCY_SHARDS)]


def idempotency_unsharded_pk(business_id: str) -> str:
    """Where records lived before they were spread: they expire within 24 h of the change,
    until which an exclusion purges this partition too (README#migrating-a-deployed-table)."""
    return f"IDEMPOTENCY#http#{business_id}"


# --- points (docs/design.md#points-ledger) ----------------------------------------------
WALLET_SK = "WALLET"
LEDGER_SK_PREFIX = "LEDGER#"
NOTICE_SK_PREFIX = "NOTICE#"
POINTS_SETTINGS_SK = "SETTINGS#POINTS"
OP_SK = "OP"
ENTITY_WALLET = "wallet"
ENTITY_LEDGER_ENTRY = "ledger_entry"
ENTITY_POINTS_OP = "points_op"
ENTITY_POINTS_NOTICE = "points_notice"
ENTITY_POINTS_SETTINGS = "points_settings"
# The scheduled points run finds wallets with work due (activation, expiry, reminder) in a
# sparse index spread over shards by customer, so no one key takes every business's writes.
POINTS_DUE_SHARDS = 16


def wallet_key(business_id: str, customer_id: str) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": WALLET_SK}


def ledger_key(business_id: str, customer_id: str, seq: int) -> dict[str, str]:
    # Zero-padded: the sort order is the order entries were written.
    return {"PK": customer_pk(business_id, customer_id), "SK": f"{LEDGER_SK_PREFIX}{seq:012d}"}


def notice_key(business_id: str, customer_id: str, notice_id: str) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": f"{NOTICE_SK_PREFIX}{notice_id}"}


def points_settings_key(business_id: str) -> dict[str, str]:
    return {"PK": business_pk(business_id), "SK": POINTS_SETTINGS_SK}


def points_op_key(business_id: str, kind: str, external_id: str) -> dict[str, str]:
    """A points command by its caller's external id: idempotency, and the purchase or
    redemption it recorded (returns and captures find it here)."""
    return {"PK": f"B#{business_id}#POP#{kind}#{external_id}", "SK": OP_SK}


def points_due_pk(shard: int) -> str:
    return f"POINTS#DUE#{shard:02d}"


def points_due_sk(due_at: str, business_id: str, customer_id: str) -> str:
    return f"{due_at}#{business_id}#{customer_id}"


# --- tiers (docs/design.md#tiers) -----------------------------------------------------------
TIER_SK = "TIER"
TIER_EVENT_SK_PREFIX = "TIEREVT#"
ENTITY_TIER = "tier"
ENTITY_TIER_EVENT = "tier_event"
# A business's tier records (evaluation jobs walk them) and the retention check's work list,
# both spread over shards by customer so neither a busy business nor the check has one key.
TIER_SHARDS = 16


def tier_key(business_id: str, customer_id: str) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": TIER_SK}


def tier_event_key(business_id: str, customer_id: str, seq: int) -> dict[str, str]:
    return {"PK": customer_pk(business_id, customer_id), "SK": f"{TIER_EVENT_SK_PREFIX}{seq:08d}"}


def tier_members_pk(business_id: str, shard: int) -> str:
    return f"B#{business_id}#TIERS#{shard:02d}"


def tier_due_pk(shard: int) -> str:
    return f"TIER#DUE#{shard:02d}"


def tier_due_sk(due_at: str, business_id: str, customer_id: str) -> str:
    return f"{due_at}#{business_id}#{customer_id}"
