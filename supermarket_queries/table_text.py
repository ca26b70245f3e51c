"""A query result as an aligned text table for the terminal."""

import pyarrow as pa


def table_text(table: pa.Table, limit: int = 50) -> str:
    rows = table.slice(0, limit).to_pylist()
    cells = [[("" if v is None else str(v)) for v in row.values()] for row in rows]
    names = table.column_names
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    more = table.num_rows - len(rows)
    lines.append(f"({table.num_rows:,} rows" + (f", {more:,} not shown)" if more else ")"))
    return "\n".join(lines)
