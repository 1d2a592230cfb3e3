"""The process's AWS clients, made once each and shared by every caller.

boto3 is imported with this module, so a function pays for it while it initialises (Lambda's
init phase), never in a request; the DynamoDB client, which every request needs, is made then
too (loyalty.api.resolver). `reset()` drops them all: the local stack, the test harness and
the benchmarks call it when the endpoint or the mock changes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

# Sharded indexes are read with one Query per shard at once (repository.base.parallel).
MAX_PARALLEL_REQUESTS = 32


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
    return boto3.client("dynamodb", config=config)


@lru_cache(maxsize=1)
def sqs() -> Any:
    return boto3.client("sqs", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@lru_cache(maxsize=1)
def s3() -> Any:
    # Path-style keeps presigned URLs usable against a loopback moto server.
    return boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@lru_cache(maxsize=1)
def ses() -> Any:
    return boto3.client("ses")


def reset() -> None:
    for factory in (dynamodb, sqs, s3, ses):
        factory.cache_clear()
