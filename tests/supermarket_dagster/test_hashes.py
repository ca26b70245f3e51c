"""string_hashes: one hash per string, the same however the strings are held, and the same in
every process (kept tallies hold them)."""

import random

import numpy as np
import pyarrow as pa
import pytest

from supermarket_dagster.hashes import string_hashes


def _strings(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcXYZ019-_é€"
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 41))) for _ in range(count)
    ]


def test_equal_strings_hash_alike_however_they_are_held():
    values = _strings(2_000)
    plain = string_hashes(pa.array(values))
    assert len(plain) == len(values)
    np.testing.assert_array_equal(string_hashes(pa.array(values, pa.large_string())), plain)
    np.testing.assert_array_equal(string_hashes(pa.array(values).dictionary_encode()), plain)
    chunked = pa.chunked_array([values[:700], values[700:]])
    np.testing.assert_array_equal(string_hashes(chunked), plain)
    np.testing.assert_array_equal(string_hashes(pa.array(values).slice(301, 55)), plain[301:356])
    alone = [string_hashes(pa.array([v]))[0] for v in values[:200]]  # whatever its neighbours
    assert alone == plain[:200].tolist()


def test_distinct_strings_hash_apart_prefixes_and_lengths_included():
    edges = {"", "a", "a\x00", "ab", "abcdefgh", "abcdefghi"}
    values = sorted(set(_strings(20_000, seed=3)) | edges)
    hashes = string_hashes(pa.array(values))
    assert len(np.unique(hashes)) == len(values)
    ids = [f"P1-{n:010d}" for n in range(100_000)]  # the feed's ids: one long shared prefix
    assert len(np.unique(string_hashes(pa.array(ids)))) == len(ids)


def test_hashes_are_the_same_in_every_process():
    # A kept tally (file_tallies, VERSION 1) holds these hashes: a change here must bump it.
    found = string_hashes(pa.array(["", "P1-0000000001", "é" * 20]))
    assert found.tolist() == [2737183428366584608, 11612030705860958275, 4078331911571575398]


def test_a_null_hashes_to_zero_and_other_types_are_refused():
    assert string_hashes(pa.array(["a", None])).tolist()[1] == 0
    assert string_hashes(pa.array([], pa.string())).shape == (0,)
    with pytest.raises(TypeError, match="expected strings"):
        string_hashes(pa.array([1, 2]))
