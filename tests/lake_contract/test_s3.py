from datetime import UTC, datetime

import pytest
from botocore.utils import parse_timestamp

from lake_contract.s3 import _timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-06T23:30:00.000Z",  # S3's LastModified in a listing
        "2026-12-06T23:30:00Z",
        "2026-12-06T23:30:00.123456Z",
        "Sun, 06 Dec 2026 23:30:00 GMT",  # a header's time (HeadObject)
        "2026-12-06T23:30:00+01:00",
        1765063800,
    ],
)
def test_a_response_time_reads_as_botocore_reads_it(value):
    assert _timestamp(value) == parse_timestamp(value)


def test_a_listing_time_is_an_aware_utc_time():
    assert _timestamp("2026-12-06T23:30:00.250Z") == datetime(2026, 12, 6, 23, 30, 0, 250_000, UTC)
