"""The import bucket: presigned upload URLs, sizes, ranged streaming reads, deletion."""

from __future__ import annotations

import io
from typing import Any

from botocore.exceptions import ClientError

from loyalty.adapters import aws
from loyalty.config import settings

UPLOAD_URL_SECONDS = 3600


def upload_url(key: str, expires_in: int = UPLOAD_URL_SECONDS) -> str:
    """A presigned PUT for `key` in the import bucket."""
    url: str = aws.s3().generate_presigned_url(
        "put_object",
        Params={"Bucket": settings().import_bucket, "Key": key},
        ExpiresIn=expires_in,
        HttpMethod="PUT",
    )
    return url


def object_size(key: str) -> int | None:
    """Size in bytes, or None when the object does not exist."""
    try:
        head = aws.s3().head_object(Bucket=settings().import_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(head["ContentLength"])


def open_object(key: str, start: int = 0) -> Any:
    """A streaming body from byte `start` (a ranged GetObject; never the whole file in memory)."""
    kwargs: dict[str, Any] = {"Bucket": settings().import_bucket, "Key": key}
    if start:
        kwargs["Range"] = f"bytes={start}-"
    try:
        return aws.s3().get_object(**kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":
            return io.BytesIO(b"")  # `start` is the end of the file: nothing left to read
        raise


def delete_object(key: str) -> None:
    """Remove an uploaded file: once its import ended, its personal data is in the table only."""
    aws.s3().delete_object(Bucket=settings().import_bucket, Key=key)
