"""The local moto's ListObjectsV2, a page at a time, answers as moto's own does, byte for byte."""

import random

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import S3Backend, s3_backends
from moto.s3.responses import S3Response

from supermarket_cli import moto_listing

ACCOUNT = "123456789012"
BUCKET = "listing"


def _names(rng: random.Random, count: int) -> list[str]:
    """Keys with shared prefixes, folders at several depths, and characters either side of '/'
    in byte order ('-', '.', '0', 'é'), and ones XML and URLs escape."""
    parts = ["raw", "raw-x", "lake", "a", "a.b", "0", "é", "dt=2026-03-01", "x&y <z>", "p q+r"]
    names = set()
    while len(names) < count:
        depth = rng.randint(1, 4)
        names.add("/".join(rng.choice(parts) for _ in range(depth)) + rng.choice(["", "/", "-1"]))
    return sorted(names)


@pytest.fixture
def moto_s_own(monkeypatch):
    """Whether the listing is moto's own (True) or this module's (False), switched per call."""
    theirs = (S3Backend.list_objects_v2, S3Response.serialized)
    monkeypatch.setattr(moto_listing, "_original", theirs[0])
    monkeypatch.setattr(moto_listing, "_original_serialized", theirs[1])
    ours = (moto_listing.list_objects_v2, moto_listing.serialized)

    def use(own: bool) -> None:
        monkeypatch.setattr(S3Backend, "list_objects_v2", theirs[0] if own else ours[0])
        monkeypatch.setattr(S3Response, "serialized", theirs[1] if own else ours[1])

    return use


@pytest.fixture
def listed_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        rng = random.Random(5)
        names = _names(rng, 400)
        for n, name in enumerate(names):
            checksum = {"ChecksumAlgorithm": "SHA256"} if n % 5 == 0 else {}
            s3.put_object(Bucket=BUCKET, Key=name, Body=b"x" * n, **checksum)
        for name in rng.sample(names, 60):  # their latest version a delete marker
            s3.delete_object(Bucket=BUCKET, Key=name)
        backend = s3_backends[ACCOUNT]["aws"]
        yield s3, backend, backend.get_bucket(BUCKET), names


def _pages(lister, backend, bucket, prefix, delimiter, start_after, max_keys):
    """Every page of one listing, followed through its continuation tokens."""
    pages, token = [], None
    for _ in range(2_000):  # more pages than keys: a listing that never ends
        entries, truncated, token = lister(
            backend, bucket, prefix, delimiter, token, start_after, max_keys
        )
        pages.append(([e if isinstance(e, str) else e.name for e in entries], truncated, token))
        if not truncated:
            return pages
    raise AssertionError(f"the listing did not end: {pages[-3:]}")


def test_every_page_of_every_kind_of_listing_is_moto_s_own(listed_bucket, moto_s_own):
    _, backend, bucket, names = listed_bucket
    prefixes = [None, "", "a", "a/", "raw", "raw/", "dt=2026-03-0", "é/", "missing/"]
    starts = [None, "", "a/", names[len(names) // 2], "raw/zzz", "\uffff"]
    compared = 0
    for prefix in prefixes:
        for delimiter in (None, "/", "-"):
            for start_after in starts:
                for max_keys in (1, 3, 1000, 0):
                    query = (bucket, prefix, delimiter, start_after, max_keys)
                    theirs = _pages(moto_listing._original, backend, *query)
                    ours = _pages(moto_listing.list_objects_v2, backend, *query)
                    assert ours == theirs, query
                    compared += sum(len(entries) for entries, _, _ in theirs)
    assert compared > 10_000  # the listings were not all empty


def _responses(s3, **listing):
    """Each page's HTTP status, headers (but the request's date and id) and body."""
    seen = []

    def keep(http_response, **_):
        headers = {k: v for k, v in http_response.headers.items()
                   if k.lower() not in {"date", "x-amzn-requestid"}}  # fmt: skip
        seen.append((http_response.status_code, headers, http_response.content))

    s3.meta.events.register("after-call.s3.ListObjectsV2", keep)
    try:
        for _ in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, **listing):
            pass
    finally:
        s3.meta.events.unregister("after-call.s3.ListObjectsV2", keep)
    return seen


@pytest.mark.parametrize(
    "listing",
    [
        {},
        {"Prefix": "a/"},
        {"Prefix": "a", "Delimiter": "/"},
        {"Delimiter": "/", "StartAfter": "lake"},
        {"Prefix": "x&y <z>/", "FetchOwner": True},
        {"StartAfter": "p q+r", "PaginationConfig": {"PageSize": 7}},
        {"Prefix": "missing/"},
    ],
)
def test_every_response_is_moto_s_own_byte_for_byte(listed_bucket, moto_s_own, listing):
    s3 = listed_bucket[0]
    moto_s_own(True)
    theirs = _responses(s3, **listing)
    moto_s_own(False)
    ours = _responses(s3, **listing)

    assert ours == theirs
    assert any(b"<Contents>" in body for _, _, body in theirs) or listing == {"Prefix": "missing/"}


def test_an_unknown_continuation_token_is_left_to_moto(listed_bucket, monkeypatch):
    _, backend, bucket, _ = listed_bucket
    answered = []
    monkeypatch.setattr(
        moto_listing, "_original", lambda *args: answered.append(args) or ([], False, None)
    )

    assert moto_listing.list_objects_v2(backend, bucket, "", None, "no-such-token", None, 5) == (
        [], False, None
    )  # fmt: skip
    assert len(answered) == 1
