"""Reading indexes spread over shards (loyalty.repository.base): merged pages stay ordered
across shards and pages, work lists read only what they return. On moto, items seeded
straight into the table so the spread across shards can be made as uneven as a test needs."""

from __future__ import annotations

import random

import boto3
import pytest

from loyalty.domain.errors import BadRequest
from loyalty.repository.base import merged_query, serialize, walk_shards
from tests.support import Aws

SHARDS = [f"LIST#{s:02d}" for s in range(16)]


def seed(aws: Aws, placement: list[tuple[int, str]]) -> None:
    """One item per (shard, sort key), indexed by GSI2 under that shard's partition."""
    client = boto3.client("dynamodb")
    items = [
        {"PK": f"ITEM#{sk}", "SK": "X", "GSI2PK": SHARDS[shard], "GSI2SK": sk, "n": i}
        for i, (shard, sk) in enumerate(placement)
    ]
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": serialize(i)}} for i in items[start : start + 25]]
        client.batch_write_item(RequestItems={aws.table_name: batch})


def read_all(limit: int) -> tuple[list[str], list[int]]:
    """Every sort key of the list, following cursors; and each page's size."""
    keys: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page = merged_query(
            SHARDS,
            index="GSI2",
            limit=limit,
            cursor=cursor,
            list_id="LIST",
        )
        keys += [i["GSI2SK"] for i in page.items]
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if not cursor:
            return keys, sizes


@pytest.mark.parametrize(
    "spread",
    ["even", "one shard", "two shards", "random"],
)
@pytest.mark.parametrize("limit", [1, 5, 16, 50])
def test_merged_pages_are_ordered_with_no_duplicate_or_gap(aws: Aws, spread: str, limit: int) -> None:
    # Given 90 items spread over the shards evenly, all in one, in two, or at random
    rng = random.Random(limit)
    chooser = {
        "even": lambda i: i % 16,
        "one shard": lambda i: 7,
        "two shards": lambda i: 3 if i % 3 else 12,
        "random": lambda i: rng.randrange(16),
    }[spread]
    keys = [f"2026-01-01T00:{i:02d}:00#{rng.random():.6f}" for i in range(90)]
    seed(aws, [(chooser(i), k) for i, k in enumerate(keys)])
    # When the list is read page by page
    seen, sizes = read_all(limit)
    # Then every item comes once, in sort-key order, and pages are full but the last
    assert seen == sorted(keys)
    assert all(size == limit for size in sizes[:-1])


def test_an_empty_list_and_a_foreign_cursor(aws: Aws) -> None:
    assert read_all(10) == ([], [0])
    seed(aws, [(1, "a"), (2, "b")])
    page = merged_query(SHARDS, index="GSI2", limit=1, cursor=None, list_id="LIST")
    with pytest.raises(BadRequest):
        merged_query(
            SHARDS,
            index="GSI2",
            limit=1,
            cursor=page.next_cursor,
            list_id="OTHER",
        )


def test_walking_shards_returns_each_item_once_and_reads_nothing_more(aws: Aws) -> None:
    # Given items due and not due across the shards, none in some
    placement = [
        (s, f"{day}#{s}") for s in (0, 3, 4, 15) for day in ("2026-01-01", "2026-01-02", "2027-01-01")
    ]
    seed(aws, placement)
    seen: list[str] = []
    cursor = None
    # When the due ones are walked 2 at a time
    while True:
        page = walk_shards(
            SHARDS,
            "GSI2PK = :pk AND GSI2SK < :now",
            {":now": "2026-06"},
            index="GSI2",
            limit=2,
            cursor=cursor,
            list_id="DUE",
        )
        assert len(page.items) <= 2
        seen += [i["GSI2SK"] for i in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    # Then each due item comes back once
    assert sorted(seen) == sorted(sk for _, sk in placement if sk < "2026-06")
    with pytest.raises(BadRequest):
        walk_shards(SHARDS, "GSI2PK = :pk", {}, index="GSI2", limit=2, cursor="garbage", list_id="DUE")


def test_a_bounded_merged_list_returns_the_oldest_due_first(aws: Aws) -> None:
    # Given items due and not due at random across the shards
    rng = random.Random(3)
    keys = [f"2026-0{rng.randrange(1, 9)}-{rng.randrange(10, 28)}#{i:03d}" for i in range(120)]
    seed(aws, [(rng.randrange(16), k) for k in keys])
    # When up to 25 of those due before July are asked for
    page = merged_query(
        SHARDS,
        index="GSI2",
        limit=25,
        cursor=None,
        list_id="DUE",
        below="2026-07",
    )
    # Then they are the 25 that have been due longest
    assert [i["GSI2SK"] for i in page.items] == sorted(k for k in keys if k < "2026-07")[:25]
