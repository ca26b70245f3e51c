"""The kept lake keeps every object whatever its key, and brings back the same keys and bytes."""

import os
import time
from pathlib import Path, PurePosixPath

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from lake_contract import s3 as lake_s3
from supermarket_cli.stack import snapshot
from tests.moto_server import use_test_aws

BUCKET = "kept-lake"

HOSTILE_KEYS = [
    "lake/transactions/dt=2026-03-01/a.parquet",
    "raw/incoming/../../lake/transactions/x.parquet",
    "..",
    ".",
    "./a",
    "/leading",
    "//double",
    "a//b",
    "folder/",
    "a",
    "a/b",
    "A",
    "B/c",
    "b/C",
    ".hidden",
    "%escaped/looks-like-the-hatch",
    "tilde~",
    "ctl\x01\x7f\tchar",
    "spaces and + and %2F",
    "x/" + "é" * 300,
    "k" * 1024,
]

# Keys as S3 takes them: 1-1,024 bytes of UTF-8 (moto refuses line breaks in a key). In-process
# moto cannot take a key with "//" in it: werkzeug reads what follows as a host ("///.",
# "/a//." fail IDNA on "."), before moto or our code sees it.
KEY_PIECES = ["a", "A", "b", "/", ".", "..", "%", "~", "é", " ", "\x01", "x" * 120]
key_text = (
    st.lists(st.sampled_from(KEY_PIECES), min_size=1, max_size=12)
    .map("".join)
    .filter(lambda k: len(k.encode("utf-8")) <= 1024 and "//" not in k)
)
key_sets = st.sets(key_text, min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(key_sets)
def test_every_key_has_its_own_file_that_maps_back_to_it(keys):
    paths = snapshot.relative_paths(keys)

    assert {snapshot.key_of(path) for path in paths.values()} == keys
    assert all(snapshot.key_of(paths[k]) == k for k in keys)
    files = {path.as_posix().casefold() for path in paths.values()}
    assert len(files) == len(keys)  # distinct even where case is not
    folders = {
        PurePosixPath(*path.parts[:n]).as_posix().casefold()
        for path in paths.values()
        for n in range(1, len(path.parts))
    }
    assert not files & folders  # no file is also a folder
    for path in paths.values():
        for name in path.parts:
            assert name not in ("", ".", "..") and "\x00" not in name and "/" not in name
            assert len(name.encode("utf-8")) <= 255
            assert not name.startswith(".")  # '.' names are the save's part files


@pytest.fixture
def s3(monkeypatch):
    use_test_aws(monkeypatch)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def contents(client, bucket):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in listed}


def fill(client, objects):
    for key, body in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)


def round_trip(client, folder: Path, fresh: str):
    client.create_bucket(Bucket=fresh)
    snapshot.restore(fresh, folder)
    return contents(client, fresh)


def test_hostile_keys_come_back_with_the_same_keys_and_bytes(s3, tmp_path):
    objects = {key: f"body of {key!r}".encode() for key in HOSTILE_KEYS}
    fill(s3, objects)
    folder = tmp_path / "kept"

    saved = snapshot.save(BUCKET, folder)

    assert (saved.objects, saved.fetched) == (len(objects), len(objects))
    assert contents(s3, BUCKET) == objects
    assert round_trip(s3, folder, "fresh") == objects
    assert (folder / "lake/transactions/dt=2026-03-01/a.parquet").is_file()  # plain keys: as is


def test_a_key_that_becomes_a_folder_and_a_rewrite_of_the_same_size_are_followed(s3, tmp_path):
    # given: a kept lake of two plain keys
    fill(s3, {"a": b"first", "c/d": b"same-size-1"})
    folder = tmp_path / "kept"
    snapshot.save(BUCKET, folder)

    # when: "a" gains a key under it, "c/d" is rewritten with as many bytes, "c" joins
    time.sleep(1.1)  # S3 times are whole seconds: the rewrite must show in the object's time
    fill(s3, {"a/b": b"under a", "c/d": b"same-size-2", "c": b"now a key too"})
    second = snapshot.save(BUCKET, folder)

    # then: only what changed moves, and the mirror holds the bucket exactly
    assert second.fetched == 4  # "a" moves aside, "a/b", the rewrite, "c" (aside: "c/" is busy)
    assert round_trip(s3, folder, "fresh") == contents(s3, BUCKET)

    # and when: the keys under them go, "a" and "c" are plain again
    s3.delete_object(Bucket=BUCKET, Key="a/b")
    s3.delete_object(Bucket=BUCKET, Key="c/d")
    third = snapshot.save(BUCKET, folder)
    assert (third.objects, third.deleted) == (2, 4)
    assert round_trip(s3, folder, "fresher") == {"a": b"first", "c": b"now a key too"}
    assert sorted(p.name for p in folder.iterdir()) == ["a", "c"]


def test_an_unchanged_lake_fetches_nothing_again(s3, tmp_path):
    fill(s3, {key: b"x" for key in HOSTILE_KEYS})
    folder = tmp_path / "kept"
    snapshot.save(BUCKET, folder)

    again = snapshot.save(BUCKET, folder)

    assert (again.fetched, again.deleted) == (0, 0)
    assert not [p for p in folder.rglob(".*")]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key_sets, st.data())
def test_save_then_restore_gives_the_same_keys_and_bytes_for_any_keys(s3, tmp_path, keys, data):
    objects = {key: data.draw(st.binary(max_size=64)) for key in keys}
    folder = tmp_path / f"kept-{os.urandom(4).hex()}"
    for key in contents(s3, BUCKET):
        s3.delete_object(Bucket=BUCKET, Key=key)
    fill(s3, objects)

    snapshot.save(BUCKET, folder)

    fresh = f"fresh-{os.urandom(4).hex()}"
    assert round_trip(s3, folder, fresh) == objects
    lake_s3.aws_client.cache_clear()
