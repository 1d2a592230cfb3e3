"""Issue 18: no hot partition key, and what search and lists cost at one business's scale.

One business's 10,000-customer CSV import, then a rule re-evaluation that changes all of
them, then an invitation run that invites all of them, each on the mocked stack. Every
write request is followed item by item (botocore hooks, item states read from moto
before and after each request), and charged as DynamoDB charges write units:

- table: ceil(size / 1 KB) of the larger of the item before and after, twice for an item
  of a TransactWriteItems (prepare and commit; a ConditionCheck counted likewise);
- each GSI: a put of the new entry, a delete of the old one, or both when its keys moved,
  ceil((size + 100 B) / 1 KB) each (an index entry costs its projected attributes, as
  template.yaml projects them, plus 100 B), once (a transaction's changes reach indexes
  after it commits), nothing when the entry's keys and projected attributes did not change.

The units are summed per partition key of the table and of each index; the hottest key
bounds how fast the workload can run, since a partition takes about 1,000 write units a
second: bound = 1,000 WCU/s x customers / WCU on the hottest key.

Then, on the business the three left behind: search by a name word (DynamoDB requests per
page) and lists by program status (items read per item returned, requests per page).
Names are drawn from weighted lists of common first names and surnames with a long tail
(see `person`), so the name index's prefixes are as uneven as a real membership's.

    PYTHONPATH=shared .venv/bin/python -m bench scale     (BENCH_SCALE_CUSTOMERS=10000)
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter
from typing import Any

from bench.common import Figure, ItemsRead, RequestCounter, counted_stack

CUSTOMERS = int(os.environ.get("BENCH_SCALE_CUSTOMERS", "10000"))
BUSINESS = "scale"
PARTITION_WCU = 1000
TARGET_RATE = 10_000
INDEXES = ("GSI1", "GSI2", "GSI3")

# Weighted heads (roughly their share in a US membership, per 10,000 people) and a tail of
# rarer names spread over many starts: real names are that uneven, and the name index's
# hottest key is the most common two-letter start.
FIRST = {
    "James": 330, "Robert": 310, "John": 300, "Michael": 280, "David": 230, "William": 230,
    "Richard": 160, "Joseph": 130, "Thomas": 130, "Christopher": 110, "Charles": 110, "Daniel": 100,
    "Matthew": 90, "Anthony": 80, "Mark": 80, "Donald": 80, "Steven": 70, "Andrew": 70, "Paul": 70,
    "Joshua": 70, "Kenneth": 60, "Kevin": 60, "Brian": 60, "Ronald": 60, "George": 60, "Jason": 60,
    "Timothy": 50, "Edward": 50, "Jeffrey": 50, "Ryan": 50, "Jacob": 50, "Gary": 50, "Nicholas": 40,
    "Eric": 40, "Jonathan": 40, "Stephen": 40, "Larry": 40, "Justin": 40, "Scott": 40, "Brandon": 40,
    "Benjamin": 40, "Samuel": 30, "Gregory": 30, "Alexander": 30, "Patrick": 30, "Frank": 30,
    "Raymond": 30, "Jack": 30, "Dennis": 30, "Jerry": 30, "Tyler": 30, "Aaron": 30, "José": 30,
    "Adam": 30, "Nathan": 30, "Henry": 30, "Mary": 260, "Patricia": 110, "Jennifer": 110, "Linda": 110,
    "Elizabeth": 100, "Barbara": 100, "Susan": 90, "Jessica": 90, "Sarah": 80, "Karen": 80, "Lisa": 70,
    "Nancy": 70, "Betty": 70, "Margaret": 70, "Sandra": 60, "Ashley": 60, "Kimberly": 60, "Donna": 60,
    "Carol": 60, "Emily": 50, "Michelle": 50, "Amanda": 50, "Melissa": 50, "Deborah": 50,
    "Stephanie": 50, "Dorothy": 50, "Rebecca": 40, "Sharon": 40, "Laura": 40, "Cynthia": 40, "Amy": 40,
    "Kathleen": 40, "Angela": 40, "Shirley": 40, "Brenda": 40, "Maria": 40, "Emma": 30, "Anna": 30,
    "Pamela": 30, "Nicole": 30, "Samantha": 30, "Katherine": 30, "Christine": 30, "Helen": 30,
    "Rachel": 30, "Janet": 30, "Catherine": 30, "Heather": 30, "Olivia": 30, "Julie": 30, "Joyce": 30,
    "Zoë": 10, "Søren": 5, "Björn": 5, "Émilie": 5, "François": 5, "Jürgen": 5, "Łukasz": 5,
}  # fmt: skip
LAST = {
    "Smith": 100, "Johnson": 80, "Williams": 70, "Brown": 60, "Jones": 60, "Garcia": 45, "Miller": 45,
    "Davis": 45, "Rodriguez": 40, "Martinez": 40, "Hernandez": 40, "Lopez": 30, "Gonzalez": 30,
    "Wilson": 30, "Anderson": 30, "Thomas": 30, "Taylor": 30, "Moore": 25, "Jackson": 25, "Martin": 25,
    "Lee": 25, "Perez": 20, "Thompson": 20, "White": 20, "Harris": 20, "Sanchez": 20, "Clark": 20,
    "Ramirez": 20, "Lewis": 20, "Robinson": 20, "Walker": 20, "Young": 15, "Allen": 15, "King": 15,
    "Wright": 15, "Scott": 15, "Torres": 15, "Nguyen": 15, "Hill": 15, "Flores": 15, "Green": 15,
    "Adams": 15, "Nelson": 15, "Baker": 15, "Hall": 15, "Rivera": 15, "Campbell": 15, "Mitchell": 15,
    "Carter": 15, "Roberts": 15, "Müller": 5, "Ørsted": 3, "Ångström": 3, "O'Brien": 10,
}  # fmt: skip
# The other ~80% of surnames (the top 50 cover about a fifth of people): a start and an
# ending, evenly over many starts.
_STARTS = """
    Ab Al Am Ar As Ba Be Bi Bl Bo Br Bu Ca Ch Cl Co Cr Cu Da De Di Do Dr Du Ed El Em Er Ev Fa Fe Fi Fl Fo
    Fr Fu Ga Ge Gi Gl Go Gr Gu Ha He Hi Ho Hu Ib Il In Ja Je Jo Ju Ka Ke Ki Kl Ko Kr La Le Li Lo Lu Ly Ma
    Mc Me Mi Mo Mu Na Ne Ni No Ob Ol Or Os Pa Pe Ph Pi Pl Po Pr Qu Ra Re Ri Ro Ru Sa Sc Se Sh Si Sl Sm Sn
    So Sp St Su Sw Ta Te Th Ti To Tr Tu Ul Va Ve Vi Vo Wa We Wh Wi Wo Ya Yo Za Ze Zi Zo
"""
_ENDS = "ley ton son man well ford field berg stein ings ett ock ard ins ner mer ridge worth hart es"
TAIL_STARTS, TAIL_ENDS = _STARTS.split(), _ENDS.split()
TAIL_SHARE = 0.8
# The names above cover about 60% of a membership's first names; the rest is a tail too.
FIRST_TAIL_SHARE = 0.4
FIRST_ENDS = ("a", "en", "ia", "on", "el", "ie", "an", "o", "ine", "y")


def person(rng: random.Random, i: int) -> dict[str, str]:
    if rng.random() < FIRST_TAIL_SHARE:
        first = rng.choice(TAIL_STARTS) + rng.choice("aeiourln") + rng.choice(FIRST_ENDS)
    else:
        first = rng.choices(list(FIRST), weights=list(FIRST.values()))[0]
    if rng.random() < TAIL_SHARE:
        last = rng.choice(TAIL_STARTS) + rng.choice("aeiourln") + rng.choice(TAIL_ENDS)
    else:
        last = rng.choices(list(LAST), weights=list(LAST.values()))[0]
    row = {"email": f"m{i}@example.com", "first_name": first, "last_name": last, "phone": ""}
    if i % 5 < 2:
        row["phone"] = f"+44770{i:07d}"
    return row


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    lines = ["Email;First Name;Last Name;Phone"]
    lines += [f"{r['email']};{r['first_name']};{r['last_name']};{r['phone']}" for r in rows]
    return ("\n".join(lines) + "\n").encode()


class WriteLedger:
    """Write units per partition key of the table and of each index, from the items each
    write request changes (states read from the in-process moto before and after it)."""

    WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")

    def __init__(self, counter: RequestCounter, table_name: str) -> None:
        from moto.dynamodb.models import dynamodb_backends

        from local import template as tpl

        self.table = dynamodb_backends["123456789012"]["us-east-1"].get_table(table_name)
        # Attributes each index projects besides keys (None: ALL), from the template itself.
        table = tpl.load()["Resources"]["LoyaltyTable"]["Properties"]
        self.projected: dict[str, set[str] | None] = {}
        for index in table["GlobalSecondaryIndexes"]:
            projection = index["Projection"]
            keys_ = {"PK", "SK", f"{index['IndexName']}PK", f"{index['IndexName']}SK"}
            included = set(projection.get("NonKeyAttributes", [])) | keys_
            self.projected[index["IndexName"]] = None if projection["ProjectionType"] == "ALL" else included
        self.units: Counter[tuple[str, str]] = Counter()
        self._session = counter._session
        self._session.events.register("before-parameter-build.dynamodb", self._before)
        self._session.events.register("after-call.dynamodb", self._after)

    def close(self) -> None:
        self._session.events.unregister("before-parameter-build.dynamodb", self._before)
        self._session.events.unregister("after-call.dynamodb", self._after)

    def reset(self) -> None:
        self.units.clear()

    def _state(self, key: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, tuple[int, str]]] | None:
        """(item size, its index keys, per index: projected size and a fingerprint of it)."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        item = self.table.get_item(DynamoType(key["PK"]), DynamoType(key["SK"]))
        if item is None:
            return None
        attrs = {name: item.attrs[name].value for name in item.attrs if name.startswith("GSI")}
        entries = {}
        for index, names in self.projected.items():
            kept = sorted(item.attrs if names is None else names & set(item.attrs))
            size = sum(len(n.encode()) + item.attrs[n].size() for n in kept)
            entries[index] = (size, repr([(n, item.attrs[n].to_json()) for n in kept]))
        return item.size(), {**attrs, "PK": key["PK"]["S"]}, entries

    @staticmethod
    def _targets(name: str, params: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        """(key, table multiplier) of every item the request writes."""

        def key_of(body: dict[str, Any]) -> dict[str, Any]:
            source = body.get("Key") or body["Item"]
            return {"PK": source["PK"], "SK": source["SK"]}

        if name == "TransactWriteItems":
            return [(key_of(next(iter(op.values()))), 2) for op in params["TransactItems"]]
        if name == "BatchWriteItem":
            requests = [r for table in params["RequestItems"].values() for r in table]
            return [(key_of(next(iter(r.values()))), 1) for r in requests]
        return [(key_of(params), 1)]

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if model.name in self.WRITES:
            targets = self._targets(model.name, params)
            context["ledger"] = [(key, factor, self._state(key)) for key, factor in targets]

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        staged = context.pop("ledger", None)
        if staged is None or "Error" in parsed:
            return
        for key, factor, before in staged:
            after = self._state(key)
            size = max(before[0] if before else 0, after[0] if after else 0)
            self.units[("table", key["PK"]["S"])] += factor * max(1, math.ceil(size / 1024))
            for index in INDEXES:
                self._charge_index(index, before, after)

    def _charge_index(self, index: str, before: Any, after: Any) -> None:
        def entry(state: Any) -> tuple[str, str, int, str] | None:
            if state is None or f"{index}PK" not in state[1] or f"{index}SK" not in state[1]:
                return None
            size, fingerprint = state[2][index]
            return state[1][f"{index}PK"], state[1][f"{index}SK"], math.ceil((size + 100) / 1024), fingerprint

        old, new = entry(before), entry(after)
        if old and new and old[:2] == new[:2]:
            if old[3] != new[3]:  # what the index projects changed: the entry is rewritten
                self.units[(index, new[0])] += max(old[2], new[2])
            return
        if old:
            self.units[(index, old[0])] += old[2]
        if new:
            self.units[(index, new[0])] += new[2]

    def hottest(self) -> tuple[tuple[str, str], int]:
        return self.units.most_common(1)[0]


def _bound_figures(name: str, ledger: WriteLedger, customers: int) -> list[Figure]:
    (where, key), units = ledger.hottest()
    bound = PARTITION_WCU * customers / units
    by_kind: dict[str, int] = {}
    for (kind, _), u in ledger.units.items():
        by_kind[kind] = max(by_kind.get(kind, 0), u)
    detail = ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
    return [
        Figure(
            f"{name}: customers/s bound by the hottest key"
            f" ({where} {_mask(key)}, {units} WCU; hottest per place: {detail})",
            bound,
            f">= {TARGET_RATE:,}/s",
            bound / TARGET_RATE,
            bound >= TARGET_RATE,
            "/s",
        )
    ]


def _mask(key: str) -> str:
    # e-mails and names are bench data, but a key printed in a table reads better short
    return key if len(key) <= 40 else key[:37] + "..."


def _import(aws: Any, api: Any, rows: list[dict[str, str]]) -> None:
    import boto3

    from local.events import s3_put_event
    from local.runtime import invoke

    ticket = api.ok("POST", "/v1/imports/uploads", {}, role="admin", business=BUSINESS)
    key = f"uploads/{BUSINESS}/{ticket['import_id']}.csv"
    data = csv_bytes(rows)
    boto3.client("s3").put_object(Bucket=aws.refs["ImportBucket"], Key=key, Body=data)
    invoke(aws.specs["CustomerImportFunction"], s3_put_event(aws.refs["ImportBucket"], key, len(data)))
    while _drain(aws, "ImportChunkQueue", "CustomerImportFunction"):
        pass
    report = api.ok("GET", f"/v1/imports/{ticket['import_id']}", role="admin", business=BUSINESS)
    assert report["state"] == "completed" and report["created"] == len(rows), report


def _drain(aws: Any, queue: str, function: str) -> int:
    """Deliver the queue's messages to its function, as the event source mapping would."""
    import boto3

    from local.events import sqs_event
    from local.runtime import invoke

    sqs = boto3.client("sqs")
    url = aws.refs[queue]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    if got:
        invoke(aws.specs[function], sqs_event(got, arn))
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
    return len(got)


def _evaluate_rules(aws: Any, api: Any) -> None:
    rule = {"attribute": "email", "operator": "exists"}
    definition = {"code": "member", "name": "Member", "rank": 1, "rule": rule}
    api.ok("POST", "/v1/status-definitions", definition, role="admin", business=BUSINESS)
    while _drain(aws, "RuleEvaluationQueue", "StatusesFunction"):
        pass


def _invite(aws: Any, api: Any, customers: int) -> int:
    from local.runtime import invoke

    settings = {"enabled": True, "batch_size": 10000, "reminder_after_days": 7, "max_reminders": 2}
    api.ok("PUT", "/v1/settings/invitations", settings, role="admin", business=BUSINESS)
    contacted = 0
    while contacted < customers:
        report = invoke(aws.specs["InvitationFunction"], {"run": "invitations"})
        done = report["invited"] + report["reminded"]
        assert done and not report["failed"], report
        contacted += done
    return contacted


def _search_figures(api: Any, counter: RequestCounter, rows: list[dict[str, str]]) -> list[Figure]:
    from loyalty.domain.search import name_words

    words = Counter(w for r in rows for w in name_words(r["first_name"], r["last_name"]))
    prefixes = Counter(w[:2] for w in words.elements() if len(w) >= 2)
    common_prefix, count = prefixes.most_common(1)[0]
    queries = [common_prefix, words.most_common(1)[0][0], "smith", "lee", "zoe", "mart"]
    worst, pages = 0, 0
    for q in queries:
        cursor = None
        for _ in range(3):
            counter.reset()
            page = api.ok(
                "GET", "/v1/customers", query={"q": q, "limit": 50, "cursor": cursor}, business=BUSINESS
            )
            worst, pages = max(worst, counter.dynamodb()), pages + 1
            # DynamoDB may end a list with an empty page (the previous one filled its limit
            # exactly); a word nobody carries ("zoe" in some draws) answers none at all.
            assert page["items"] or q == "zoe" or (cursor and not page["next_cursor"]), q
            cursor = page["next_cursor"]
            if not cursor:
                break
    share = count / sum(prefixes.values())
    return [
        Figure(
            f"search by a name word ({', '.join(queries)}; {pages} pages of 50):"
            " DynamoDB requests per page, worst",
            worst,
            "<= 2",
            worst / 2,
            worst <= 2,
        ),
        Figure(
            f"name index: share of the words under the commonest start '{common_prefix}'",
            share * 100,
            "info",
            None,
            True,
            " %",
        ),
    ]


def _list_figures(api: Any, counter: RequestCounter, items_read: ItemsRead) -> list[Figure]:
    figures = []
    for limit in (50, 20, 100):
        returned = read = requests = pages = 0
        cursor = None
        for _ in range(5):
            counter.reset()
            items_read.reset()
            page = api.ok(
                "GET",
                "/v1/customers",
                query={"status": "pending", "limit": limit, "cursor": cursor},
                business=BUSINESS,
            )
            returned += len(page["items"])
            read += items_read.total()
            requests += counter.dynamodb()
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        ratio = read / max(returned, 1)
        figures.append(
            Figure(
                f"list by program status, pages of {limit}: items read per item returned",
                ratio,
                "<= 1.5",
                ratio / 1.5,
                ratio <= 1.5 and returned == pages * limit,
                "x",
            )
        )
        figures.append(
            Figure(
                f"list by program status, pages of {limit}: DynamoDB requests per page (16 shards, parallel)",
                requests / pages,
                "info",
                None,
                True,
            )
        )
    return figures


def run() -> list[Figure]:
    from local.harness import Api, fast_moto_item_answers, fast_moto_queries, fast_moto_transactions

    # As the local stack runs moto: a Query reads its partition, not the sorted table (what
    # DynamoDB answers is unchanged; without it the lists below take minutes on moto).
    fast_moto_transactions()
    fast_moto_queries()
    fast_moto_item_answers()
    rng = random.Random(18)
    rows = [person(rng, i) for i in range(CUSTOMERS)]
    figures: list[Figure] = []
    with counted_stack("bench-scale") as (aws, counter):
        api = Api(aws)
        ledger = WriteLedger(counter, aws.table_name)
        items_read = ItemsRead(counter)
        try:
            steps = (
                ("import of a business's customers (CSV)", lambda: _import(aws, api, rows)),
                ("rule re-evaluation changing every customer", lambda: _evaluate_rules(aws, api)),
                ("invitation run inviting every customer", lambda: _invite(aws, api, CUSTOMERS)),
            )
            for name, step in steps:
                ledger.reset()
                started = time.perf_counter()
                step()
                figures += _bound_figures(f"{name} of {CUSTOMERS:,}", ledger, CUSTOMERS)
                print(f"# {name}: {time.perf_counter() - started:.0f}s, top keys {_top(ledger)}", flush=True)
            figures += _search_figures(api, counter, rows)
            figures += _list_figures(api, counter, items_read)
        finally:
            ledger.close()
            items_read.close()
    return figures


def _top(ledger: WriteLedger) -> str:
    return json.dumps([[f"{w} {_mask(k)}", u] for (w, k), u in ledger.units.most_common(4)])
