"""The process's AWS clients, made once each and shared by every caller.

Clients come from botocore, not boto3: boto3 adds nothing a function uses, and importing it
(its session, resources and s3transfer) costs a cold start more than a tenth of its time.
The DynamoDB client is made while the function initialises (loyalty.api.resolver), as
every request needs it. `reset()` drops them all: the local stack, the test harness and the
benchmarks call it when the endpoint or the mock changes.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.config import Config

# Sharded indexes are read with one Query per shard at once (repository.base.parallel).
MAX_PARALLEL_REQUESTS = 32


@lru_cache(maxsize=1)
def session() -> Any:
    """The botocore session clients are made from. Where the process has boto3 loaded (the
    local stack, tests and benchmarks, whose tools hook the default session's events), its
    default session; in a function, botocore's own."""
    boto3 = sys.modules.get("boto3")
    if boto3 is not None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        return boto3.DEFAULT_SESSION._session
    return botocore.session.get_session()


@lru_cache(maxsize=1)
def dynamodb() -> Any:
    # Standard retry mode retries throttling and transient errors with backoff. Requests are
    # built only by this package and DynamoDB validates them again, so botocore's client-side
    # pass over every parameter is skipped (a sixth of a batch write's CPU; webhook logs write
    # hundreds of items per stream batch). One pooled connection per parallel request, so
    # shard reads never wait for a socket.
    config = Config(
        retries={"mode": "standard", "max_attempts": 6},
        parameter_validation=False,
        max_pool_connections=MAX_PARALLEL_REQUESTS,
    )
    return session().create_client("dynamodb", config=config)


@lru_cache(maxsize=1)
def sqs() -> Any:
    return session().create_client("sqs", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@lru_cache(maxsize=1)
def s3() -> Any:
    # Path-style keeps presigned URLs usable against a loopback moto server.
    return session().create_client(
        "s3", config=Config(signature_version="s3v4", s3={"addressing_style": "path"})
    )


@lru_cache(maxsize=1)
def ses() -> Any:
    return session().create_client("ses")


def reset() -> None:
    for factory in (session, dynamodb, sqs, s3, ses):
        factory.cache_clear()
