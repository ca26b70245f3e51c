-- Baskets and revenue per store, UTC hour and payment method, with the store's name. Hours
-- make any store-local day exact, so one view feeds the dashboard's tiles, sales by store,
-- sales over time and payment mix, for any store filter; the daily, hourly and payment views
-- sum it further.
-- A day's transactions ingested before the mark of its store_hourly_totals rollup (summed by
-- Dagster a few minutes back) are read from the rollup while the day still holds exactly as
-- many of them as the rollup summed; only the rows ingested since are summed here. Any other
-- day (never rolled up, or changed below the mark since: a dedupe, a re-ingestion) is summed
-- from its rows. So the figures are always exact, and an open day costs the minutes since its
-- last rollup, not the whole day.
WITH marks AS (
    SELECT dt, MAX(summed_through) AS summed_through, SUM(transactions) AS transactions
    FROM store_hourly_totals
    GROUP BY dt
),
since_mark AS (
    SELECT
        t.dt,
        date_trunc('hour', t.transaction_datetime) AS hour,
        t.store_id,
        t.payment_method,
        COUNT(*) AS transactions,
        SUM(t.total_amount) AS revenue
    FROM transactions AS t
    JOIN marks AS m ON m.dt = t.dt AND t.ingested_at >= m.summed_through
    -- A scan filter: the row groups all ingested before every mark are skipped, not read.
    WHERE t.ingested_at >= (SELECT MIN(summed_through) FROM marks)
    GROUP BY t.dt, date_trunc('hour', t.transaction_datetime), t.store_id, t.payment_method
),
rolled_up_days AS (
    SELECT marks.dt
    FROM marks
    JOIN (
        SELECT dt, COUNT(*) AS transactions
        FROM transactions
        WHERE dt IN (SELECT dt FROM marks)
        GROUP BY dt
    ) AS on_day ON on_day.dt = marks.dt
    LEFT JOIN (
        SELECT dt, SUM(transactions) AS transactions
        FROM since_mark
        GROUP BY dt
    ) AS since ON since.dt = marks.dt
    WHERE on_day.transactions - COALESCE(since.transactions, 0) = marks.transactions
),
per_hour AS (
    SELECT
        dt,
        hour,
        store_id,
        payment_method,
        CAST(SUM(transactions) AS BIGINT) AS transactions,
        SUM(revenue) AS revenue
    FROM (
        SELECT r.dt, r.hour, r.store_id, r.payment_method, r.transactions, r.revenue
        FROM store_hourly_totals AS r
        WHERE r.dt IN (SELECT dt FROM rolled_up_days)
        UNION ALL
        SELECT s.dt, s.hour, s.store_id, s.payment_method, s.transactions, s.revenue
        FROM since_mark AS s
        WHERE s.dt IN (SELECT dt FROM rolled_up_days)
        UNION ALL
        -- An anti join, not NOT IN: on a day never rolled up, 4x faster in DuckDB (17 against 76 ms).
        SELECT
            t.dt,
            date_trunc('hour', t.transaction_datetime) AS hour,
            t.store_id,
            t.payment_method,
            COUNT(*) AS transactions,
            SUM(t.total_amount) AS revenue
        FROM transactions AS t
        LEFT JOIN rolled_up_days AS d ON d.dt = t.dt
        WHERE d.dt IS NULL
        GROUP BY t.dt, date_trunc('hour', t.transaction_datetime), t.store_id, t.payment_method
    ) AS parts
    GROUP BY dt, hour, store_id, payment_method
)
SELECT
    per_hour.dt,
    per_hour.hour,
    per_hour.store_id,
    s.store_name,
    per_hour.payment_method,
    per_hour.transactions,
    per_hour.revenue
FROM per_hour
LEFT JOIN supermarkets AS s ON s.store_id = per_hour.store_id
