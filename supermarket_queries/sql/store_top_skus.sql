-- Units and revenue per SKU per store per day, with name and category: top SKUs for any store
-- filter (top_skus ranks the whole chain's days). Each line carries its basket's store, so the
-- lines are summed alone, then joined to the SKUs.
-- A day's lines ingested before the mark of its store_sku_totals rollup (summed by Dagster a
-- few minutes back) are read from the rollup while the day still holds exactly as many of them
-- as the rollup summed; only the lines ingested since are summed here. Any other day is summed
-- from its lines (as in store_hourly_sales, which explains the parts).
WITH marks AS (
    SELECT dt, MAX(summed_through) AS summed_through, SUM(lines) AS lines
    FROM store_sku_totals
    GROUP BY dt
),
since_mark AS (
    SELECT
        i.dt,
        i.store_id,
        i.sku_id,
        CAST(SUM(i.quantity) AS BIGINT) AS units,
        SUM(i.quantity * i.unit_price) AS revenue,
        COUNT(*) AS lines
    FROM transaction_items AS i
    JOIN marks AS m ON m.dt = i.dt AND i.ingested_at >= m.summed_through
    WHERE i.ingested_at >= (SELECT MIN(summed_through) FROM marks)
    GROUP BY i.dt, i.store_id, i.sku_id
),
rolled_up_days AS (
    SELECT marks.dt
    FROM marks
    JOIN (
        SELECT dt, COUNT(*) AS lines
        FROM transaction_items
        WHERE dt IN (SELECT dt FROM marks)
        GROUP BY dt
    ) AS on_day ON on_day.dt = marks.dt
    LEFT JOIN (
        SELECT dt, SUM(lines) AS lines
        FROM since_mark
        GROUP BY dt
    ) AS since ON since.dt = marks.dt
    WHERE on_day.lines - COALESCE(since.lines, 0) = marks.lines
),
per_sku AS (
    SELECT dt, store_id, sku_id, CAST(SUM(units) AS BIGINT) AS units, SUM(revenue) AS revenue
    FROM (
        SELECT r.dt, r.store_id, r.sku_id, r.units, r.revenue
        FROM store_sku_totals AS r
        WHERE r.dt IN (SELECT dt FROM rolled_up_days)
        UNION ALL
        SELECT s.dt, s.store_id, s.sku_id, s.units, s.revenue
        FROM since_mark AS s
        WHERE s.dt IN (SELECT dt FROM rolled_up_days)
        UNION ALL
        SELECT
            i.dt,
            i.store_id,
            i.sku_id,
            CAST(SUM(i.quantity) AS BIGINT) AS units,
            SUM(i.quantity * i.unit_price) AS revenue
        FROM transaction_items AS i
        LEFT JOIN rolled_up_days AS d ON d.dt = i.dt
        WHERE d.dt IS NULL
        GROUP BY i.dt, i.store_id, i.sku_id
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
