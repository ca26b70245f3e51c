"""moto's S3 ListObjectsV2 a page at a time, so that the local stack's listings cost what S3's do.

moto 5.2.5 answers every page of a listing by walking every key of the bucket in Python (a few
method calls per key), building and sorting every entry under the prefix, and dropping those
before the page. Once the stack's bucket holds ~100,000 objects (the lake's files, raw logs,
audit records) a page took ~0.4 s, so a check that lists a day of 21,600 raw logs spent 8.3 s
in 22 pages, where S3 answers a page in tens of milliseconds. Here a page takes the bucket's
key names in one C-level copy, sorts the names under the prefix, and builds only the page's
entries. The answer is the same as moto's own (a test compares the two on every kind of
listing); anything this does not handle (an unknown continuation token) goes to moto's own.
"""

from bisect import bisect_right
from operator import methodcaller
from typing import Any

_original: Any = None


def install() -> None:
    """Serves ListObjectsV2 from list_objects_v2 below (idempotent)."""
    global _original
    from moto.s3.models import S3Backend

    if _original is None:
        _original = S3Backend.list_objects_v2
        S3Backend.list_objects_v2 = list_objects_v2


def list_objects_v2(
    self: Any,
    bucket: Any,
    prefix: str | None,
    delimiter: str | None,
    continuation_token: str | None,
    start_after: str | None,
    max_keys: int,
) -> tuple[list[Any], bool, str | None]:
    """S3Backend.list_objects_v2: the page's keys (FakeKeys) and common prefixes (str), in name
    order; whether more follow; the token of the next page."""
    from moto.s3.models import FakeDeleteMarker, FakeTableStorageBucket
    from moto.utilities.utils import md5_hash

    limit = start_after
    if continuation_token:
        limit = self._pagination_tokens.get(continuation_token)
    if isinstance(bucket, FakeTableStorageBucket) or (continuation_token and limit is None):
        return _original(self, bucket, prefix, delimiter, continuation_token, start_after, max_keys)
    if max_keys == 0:
        return [], False, None
    prefix = prefix or ""
    store = bucket.keys
    # list() copies the names under the GIL: no other request's write can interleave.
    names = sorted(filter(methodcaller("startswith", prefix), list(dict.keys(store))))
    start = bisect_right(names, limit) if limit else 0
    page: list[Any] = []
    last_folder = None
    for name in names[start:]:
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            # A common prefix: listed once, at its first key; its keys sort right after it.
            folder = prefix + rest.split(delimiter)[0] + delimiter
            if folder == last_folder or (limit and folder <= limit):
                continue
            entry: Any = folder
            last_folder = folder
        else:
            entry = store.get(name)  # the latest version; None if deleted meanwhile
            if entry is None or isinstance(entry, FakeDeleteMarker):
                continue
        if len(page) == max_keys:  # one entry more than the page: it is truncated
            last = page[-1] if isinstance(page[-1], str) else page[-1].name
            token = md5_hash(last.encode("utf-8")).hexdigest()
            self._pagination_tokens[token] = last
            return page, True, token
        page.append(entry)
    return page, False, None
