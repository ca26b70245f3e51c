"""The lake as a Dagster resource: a bucket reached through dagster-aws's S3 resource."""

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource


class LakeResource(dg.ConfigurableResource):
    """The lake bucket. Its S3 client resolves the endpoint as boto3 does: AWS_ENDPOINT_URL
    points it at the local stack, its absence at AWS."""

    bucket: str
    s3: dg.ResourceDependency[S3Resource]

    def _client(self) -> Any:
        return self.s3.get_client()

    def write(self, key: str, body: bytes) -> None:
        self._client().put_object(Bucket=self.bucket, Key=key, Body=body)

    def read(self, key: str) -> bytes:
        return self._client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def list_keys(self, prefix: str, after: str = "", limit: int | None = None) -> list[str]:
        """Keys under prefix in key order, strictly after `after`, at most `limit` of them."""
        paginator = self._client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, StartAfter=after):
            keys += [o["Key"] for o in page.get("Contents", [])]
            if limit is not None and len(keys) >= limit:
                return keys[:limit]
        return keys


def lake_from_environment() -> LakeResource:
    """Bucket from LAKE_BUCKET, resolved when a run launches, not at import."""
    return LakeResource(bucket=dg.EnvVar("LAKE_BUCKET"), s3=S3Resource())
