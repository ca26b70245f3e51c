import csv

import pyarrow.parquet as pq
import pytest

from supermarket_cli.main import main


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("lake")
    main(["generate", "reference", "--out", str(work), "--skus", "300"])
    main(["generate", "history", "--out", str(work), "--transactions", "500", "--skus", "300",
          "--start", "2026-03-01", "--end", "2026-03-02"])  # fmt: skip
    main(["convert", str(work / "raw"), "--out", str(work)])
    return work


def test_a_view_prints_as_a_table(lake, capsys):
    assert main(["query", "--lake", str(lake), "--view", "payment_method_mix",
                 "--where", "dt = DATE '2026-03-01'"]) == 0  # fmt: skip

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["dt", "payment_method", "transactions", "revenue",
                                "share_of_transactions"]  # fmt: skip
    assert all(line.startswith("2026-03-01") for line in lines[2:-1])
    assert lines[-1].startswith("(") and "rows" in lines[-1]


def test_sql_results_go_to_csv_and_parquet(lake, tmp_path, capsys):
    sql = "SELECT store_id, count(*) AS n FROM transactions GROUP BY store_id ORDER BY store_id"

    assert main(["query", "--lake", str(lake), sql, "--csv", str(tmp_path / "a.csv"),
                 "--parquet", str(tmp_path / "a.parquet")]) == 0  # fmt: skip

    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert sum(int(r["n"]) for r in rows) == 500
    assert pq.read_table(tmp_path / "a.parquet").num_rows == len(rows) == 5
    assert "wrote 5 rows" in capsys.readouterr().out


def test_long_results_are_cut_with_a_count(lake, capsys):
    main(["query", "--lake", str(lake), "SELECT * FROM skus", "--limit", "3"])

    assert capsys.readouterr().out.splitlines()[-1] == "(300 rows, 297 not shown)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--view", "sales"], "no view named 'sales'; the views are: basket_size"),
        (["SELEC 1"], "syntax error"),
        (["SELECT * FROM nowhere"], "nowhere"),
        ([], "give either a SQL query or --view NAME"),
        (["SELECT 1", "--view", "freshness"], "give either a SQL query or --view NAME"),
    ],
)
def test_bad_queries_are_clear_errors(lake, capsys, args, message):
    assert main(["query", "--lake", str(lake), *args]) == 2

    assert message in capsys.readouterr().err
