"""How the counting moto server bills each S3 request."""

import pytest

from supermarket_cost.counting_moto import object_kind, s3_kind


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("PUT", "/b/raw/incoming/dt=2026-12-02/x.ndjson", {}, ("PUT", "raw", "PutObject")),
        ("POST", "/b/lake/transactions/data/x.parquet", {"uploads": [""]},
         ("PUT", "data", "CreateMultipartUpload")),
        ("PUT", "/b/lake/transactions/data/x.parquet", {"partNumber": ["1"], "uploadId": ["u"]},
         ("PUT", "data", "UploadPart")),
        ("POST", "/b/lake/transactions/data/x.parquet", {"uploadId": ["u"]},
         ("PUT", "data", "CompleteMultipartUpload")),
        ("GET", "/b", {"list-type": ["2"], "prefix": ["audit/"]},
         ("LIST", "bucket", "ListObjects")),
        ("HEAD", "/b/lake/t/metadata/00001-a.metadata.json", {},
         ("GET", "iceberg_metadata", "HeadObject")),
        ("GET", "/b/lake/t/metadata/snap-1-a.avro", {},
         ("GET", "iceberg_manifest_list", "GetObject")),
        ("GET", "/b/lake/t/metadata/a-m0.avro", {}, ("GET", "iceberg_manifest", "GetObject")),
        ("POST", "/b", {"delete": [""]}, ("DELETE", "bucket", "DeleteObjects")),
        ("DELETE", "/b/quarantine/x.ndjson", {}, ("DELETE", "quarantine", "DeleteObject")),
    ],
)  # fmt: skip
def test_each_request_gets_its_billed_tier_object_kind_and_operation(method, path, query, expected):
    assert s3_kind(method, path, query) == expected


def test_encoded_keys_are_decoded_before_they_are_classified():
    assert object_kind("audit/dt=2026-12-02/1-x.json") == "audit"
    assert s3_kind("GET", "/b/lake/skus/skus.parquet", {})[1] == "data"
    assert s3_kind("GET", "/b/lake%2Ft%2Fmetadata%2F1.metadata.json", {})[1] == "iceberg_metadata"
