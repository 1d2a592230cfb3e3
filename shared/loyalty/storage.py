"""S3 and SQS access for imports: presigned upload URLs, ranged streaming reads, continuation.

Clients are created on first use (no boto3 at handler import) and cached per process;
`reset()` drops them when the endpoint or the mock changes (tests, the local stack).
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

from loyalty.config import settings

UPLOAD_URL_SECONDS = 3600


@lru_cache(maxsize=1)
def _s3() -> Any:
    import boto3
    from botocore.config import Config

    # Path-style keeps presigned URLs usable against a loopback moto server.
    return boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@lru_cache(maxsize=1)
def _sqs() -> Any:
    import boto3

    return boto3.client("sqs")


def reset() -> None:
    _s3.cache_clear()
    _sqs.cache_clear()


def upload_url(key: str, expires_in: int = UPLOAD_URL_SECONDS) -> str:
    """A presigned PUT for `key` in the import bucket."""
    url: str = _s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": settings().import_bucket, "Key": key},
        ExpiresIn=expires_in,
        HttpMethod="PUT",
    )
    return url


def object_size(key: str) -> int | None:
    """Size in bytes, or None when the object does not exist."""
    from botocore.exceptions import ClientError

    try:
        head = _s3().head_object(Bucket=settings().import_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(head["ContentLength"])


def open_object(key: str, start: int = 0) -> Any:
    """A streaming body from byte `start` (a ranged GetObject; never the whole file in memory)."""
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": settings().import_bucket, "Key": key}
    if start:
        kwargs["Range"] = f"bytes={start}-"
    try:
        return _s3().get_object(**kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":
            return io.BytesIO(b"")  # `start` is the end of the file: nothing left to read
        raise


def send_continuation(message: dict[str, Any], delay_seconds: int = 0) -> None:
    _sqs().send_message(
        QueueUrl=settings().import_queue_url,
        MessageBody=json.dumps(message, separators=(",", ":")),
        DelaySeconds=delay_seconds,
    )
