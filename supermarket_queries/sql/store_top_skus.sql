-- Units and revenue per SKU per store per day, with name and category: top SKUs for any store
-- filter (top_skus ranks the whole chain's days). Each line carries its basket's store, so the
-- lines are summed alone, then joined to the SKUs.
-- The newest day of the store_sku_totals rollup (the open day) is read from the rollup plus its
-- lines ingested since the rollup's mark, while the day still holds exactly as many lines
-- ingested before the mark as the rollup summed; every other day is summed from its lines. The
-- parts are picked as in store_hourly_sales, which says why.
WITH mark AS (
    SELECT dt, MAX(summed_through) AS summed_through, SUM(lines) AS lines
    FROM store_sku_totals
    WHERE dt = (SELECT MAX(dt) FROM store_sku_totals)
    GROUP BY dt
),
since_mark AS (
    SELECT
        dt,
        store_id,
        sku_id,
        CAST(SUM(quantity) AS BIGINT) AS units,
        SUM(quantity * unit_price) AS revenue,
        COUNT(*) AS lines
    FROM transaction_items
    -- Comparisons with the mark's one row, which DuckDB pushes into the scan (files and row
    -- groups outside them are skipped); with no mark, a time no row has, so nothing is read.
    WHERE dt = (SELECT dt FROM mark)
        AND ingested_at >= COALESCE((SELECT summed_through FROM mark), TIMESTAMP '9999-12-31')
    GROUP BY dt, store_id, sku_id
),
rolled_up_day AS (
    SELECT mark.dt
    FROM mark
    WHERE mark.lines = (
        SELECT COUNT(*) FROM transaction_items WHERE dt = (SELECT dt FROM mark)
    ) - (
        SELECT COALESCE(SUM(lines), 0) FROM since_mark
    )
),
from_lines AS (
    SELECT store_id, sku_id, quantity, unit_price, dt
    FROM transaction_items
    WHERE dt < (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM rolled_up_day)
    UNION ALL
    SELECT store_id, sku_id, quantity, unit_price, dt
    FROM transaction_items
    WHERE dt > (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM rolled_up_day)
),
per_sku AS (
    SELECT dt, store_id, sku_id, CAST(SUM(units) AS BIGINT) AS units, SUM(revenue) AS revenue
    FROM (
        SELECT r.dt, r.store_id, r.sku_id, r.units, r.revenue
        FROM store_sku_totals AS r
        WHERE r.dt = (SELECT dt FROM rolled_up_day)
        UNION ALL
        SELECT s.dt, s.store_id, s.sku_id, s.units, s.revenue
        FROM since_mark AS s
        WHERE s.dt = (SELECT dt FROM rolled_up_day)
        UNION ALL
        SELECT
            dt,
            store_id,
            sku_id,
            CAST(SUM(quantity) AS BIGINT) AS units,
            SUM(quantity * unit_price) AS revenue
        FROM from_lines
        GROUP BY dt, store_id, sku_id
    ) AS parts
    GROUP BY dt, store_id, sku_id
)
SELECT
    per_sku.dt,
    per_sku.store_id,
    per_sku.sku_id,
    k.product_name,
    k.category,
    per_sku.units,
    per_sku.revenue
FROM per_sku
LEFT JOIN skus AS k ON k.sku_id = per_sku.sku_id
