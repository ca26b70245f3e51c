-- Units and revenue per SKU per day, ranked within the day by revenue and by units.
-- A day is read from the sku_daily_sales rollup (summed and ranked by Dagster) when the rollup
-- summed exactly as many lines as transaction_items holds for that day now. Any other day
-- (today, a day not rolled up yet, a day a late file changed) is summed and ranked here: the
-- newest day of the store_sku_totals rollup (the open day) from those totals plus its lines
-- ingested since their mark, while they still sum exactly the day's lines before the mark (as
-- store_top_skus reads them); the rest from their lines. So the figures are always exact, a
-- current rollup spares 2M lines a day, and the open day costs the minutes since its mark.
-- The lines are summed from the first such day on: a late file in an old day costs the days
-- after it too, until the rollup has run again.
WITH item_days AS (
    SELECT dt, COUNT(*) AS lines
    FROM transaction_items
    GROUP BY dt
),
rolled_up_days AS (
    SELECT rolled.dt
    FROM (
        SELECT dt, SUM(lines) AS lines
        FROM sku_daily_sales
        GROUP BY dt
    ) AS rolled
    JOIN item_days ON item_days.dt = rolled.dt AND item_days.lines = rolled.lines
),
live_days AS (
    SELECT dt FROM item_days
    EXCEPT
    SELECT dt FROM rolled_up_days
),
mark AS (
    SELECT dt, MAX(summed_through) AS summed_through, SUM(lines) AS lines
    FROM store_sku_totals
    WHERE dt = (SELECT MAX(dt) FROM store_sku_totals)
    GROUP BY dt
),
since_mark AS (
    SELECT
        dt,
        sku_id,
        CAST(SUM(quantity) AS BIGINT) AS units,
        SUM(quantity * unit_price) AS revenue,
        COUNT(*) AS lines
    FROM transaction_items
    -- Comparisons with the mark's one row, which DuckDB pushes into the scan (files and row
    -- groups outside them are skipped); with no mark, a time no row has, so nothing is read.
    WHERE dt = (SELECT dt FROM mark)
        AND ingested_at >= COALESCE((SELECT summed_through FROM mark), TIMESTAMP '9999-12-31')
    GROUP BY dt, sku_id
),
-- The mark's day, when it is live and its totals still sum exactly its lines before the mark.
totals_day AS (
    SELECT mark.dt
    FROM mark
    JOIN item_days ON item_days.dt = mark.dt
    WHERE mark.dt IN (SELECT dt FROM live_days)
        AND mark.lines = item_days.lines - (
            SELECT COALESCE(SUM(lines), 0) FROM since_mark
        )
),
-- The lines of the live days but the totals' day, picked by comparisons with one value each,
-- which DuckDB pushes into the scan (files and row groups outside them are skipped): from the
-- first live day to the totals' day, and after it. (A `dt <>` the totals' day is not pushed:
-- it read the whole open day to drop it; picked from the lines, the days were a semi join
-- building on every line.) The live days are then picked from the sums.
live_lines AS (
    SELECT dt, sku_id, quantity, unit_price
    FROM transaction_items
    WHERE dt >= (SELECT COALESCE(MIN(dt), DATE '9999-12-31') FROM live_days)
        AND dt < (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM totals_day)
    UNION ALL
    SELECT dt, sku_id, quantity, unit_price
    FROM transaction_items
    WHERE dt > (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM totals_day)
),
live AS (
    SELECT dt, sku_id, CAST(SUM(units) AS BIGINT) AS units, SUM(revenue) AS revenue
    FROM (
        SELECT t.dt, t.sku_id, t.units, t.revenue
        FROM store_sku_totals AS t
        WHERE t.dt = (SELECT dt FROM totals_day)
        UNION ALL
        SELECT s.dt, s.sku_id, s.units, s.revenue
        FROM since_mark AS s
        WHERE s.dt = (SELECT dt FROM totals_day)
        UNION ALL
        SELECT dt, sku_id, units, revenue
        FROM (
            SELECT
                dt,
                sku_id,
                CAST(SUM(quantity) AS BIGINT) AS units,
                SUM(quantity * unit_price) AS revenue
            FROM live_lines
            GROUP BY dt, sku_id
        ) AS from_lines
        WHERE dt IN (SELECT dt FROM live_days)
    ) AS parts
    GROUP BY dt, sku_id
),
per_sku AS (
    SELECT dt, sku_id, units, revenue, revenue_rank, units_rank
    FROM sku_daily_sales
    WHERE dt IN (SELECT dt FROM rolled_up_days)
    UNION ALL
    SELECT
        dt,
        sku_id,
        units,
        revenue,
        RANK() OVER (PARTITION BY dt ORDER BY revenue DESC) AS revenue_rank,
        RANK() OVER (PARTITION BY dt ORDER BY units DESC) AS units_rank
    FROM live
)
-- Joins the product names to the small result, not to every line.
SELECT
    per_sku.dt,
    per_sku.sku_id,
    k.product_name,
    k.category,
    per_sku.units,
    per_sku.revenue,
    per_sku.revenue_rank,
    per_sku.units_rank
FROM per_sku
LEFT JOIN skus AS k ON k.sku_id = per_sku.sku_id
