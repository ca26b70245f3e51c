"""The local moto's ListObjectsV2, a page at a time, answers as moto's own does."""

import random

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import S3Backend, s3_backends

from supermarket_cli import moto_listing

ACCOUNT = "123456789012"


def _names(rng: random.Random, count: int) -> list[str]:
    """Keys with shared prefixes, folders at several depths, and characters either side of '/'
    in byte order ('-', '.', '0', 'é')."""
    parts = ["raw", "raw-x", "lake", "a", "a.b", "0", "é", "dt=2026-03-01", "dt=2026-03-02"]
    names = set()
    while len(names) < count:
        depth = rng.randint(1, 4)
        names.add("/".join(rng.choice(parts) for _ in range(depth)) + rng.choice(["", "/", "-1"]))
    return sorted(names)


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


@pytest.fixture
def listed_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="listing")
        s3.put_bucket_versioning(Bucket="listing", VersioningConfiguration={"Status": "Enabled"})
        rng = random.Random(5)
        names = _names(rng, 400)
        for name in names:
            s3.put_object(Bucket="listing", Key=name, Body=b"x")
        for name in rng.sample(names, 60):  # their latest version a delete marker
            s3.delete_object(Bucket="listing", Key=name)
        backend = s3_backends[ACCOUNT]["aws"]
        yield backend, backend.get_bucket("listing"), names


def test_every_page_of_every_kind_of_listing_is_moto_s_own(listed_bucket):
    backend, bucket, names = listed_bucket
    prefixes = [None, "", "a", "a/", "raw", "raw/", "dt=2026-03-0", "é/", "missing/"]
    starts = [None, "", "a/", names[len(names) // 2], "raw/zzz", "\uffff"]
    compared = 0
    for prefix in prefixes:
        for delimiter in (None, "/", "-"):
            for start_after in starts:
                for max_keys in (1, 3, 1000, 0):
                    query = (bucket, prefix, delimiter, start_after, max_keys)
                    theirs = _pages(S3Backend.list_objects_v2, backend, *query)
                    ours = _pages(moto_listing.list_objects_v2, backend, *query)
                    assert ours == theirs, query
                    compared += sum(len(entries) for entries, _, _ in theirs)
    assert compared > 10_000  # the listings were not all empty


def test_an_unknown_continuation_token_is_left_to_moto(listed_bucket, monkeypatch):
    backend, bucket, _ = listed_bucket
    answered = []
    monkeypatch.setattr(
        moto_listing, "_original", lambda *args: answered.append(args) or ([], False, None)
    )

    assert moto_listing.list_objects_v2(backend, bucket, "", None, "no-such-token", None, 5) == (
        [], False, None
    )  # fmt: skip
    assert len(answered) == 1
