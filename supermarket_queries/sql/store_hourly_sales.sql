-- Baskets and revenue per store, UTC hour and payment method, with the store's name. Hours
-- make any store-local day exact, so one view feeds the dashboard's tiles, sales by store,
-- sales over time and payment mix, for any store filter.
-- The newest day of the store_hourly_totals rollup (the open day, summed by Dagster through a
-- mark a few minutes back) is read from the rollup, plus its rows ingested since the mark,
-- while the day still holds exactly as many rows ingested before the mark as the rollup
-- summed. Every other day, and that day too when the rollup no longer matches it (a dedupe or
-- a re-ingestion since), is summed from its rows. So the figures are always exact, and the open
-- day costs the minutes since its last rollup, not the whole day.
-- Each part picks its rows with a comparison to a one-row subquery, never a join to a list of
-- days: DuckDB prunes the row groups such a comparison excludes (dt, ingested_at) without
-- reading them, where an anti join would read the whole open day to throw it away.
WITH mark AS (
    SELECT dt, MAX(summed_through) AS summed_through, SUM(transactions) AS transactions
    FROM store_hourly_totals
    WHERE dt = (SELECT MAX(dt) FROM store_hourly_totals)
    GROUP BY dt
),
since_mark AS (
    SELECT
        dt,
        date_trunc('hour', transaction_datetime) AS hour,
        store_id,
        payment_method,
        COUNT(*) AS transactions,
        SUM(total_amount) AS revenue
    FROM transactions
    -- Comparisons with the mark's one row, which DuckDB pushes into the scan (files and row
    -- groups outside them are skipped); with no mark, a time no row has, so nothing is read.
    WHERE dt = (SELECT dt FROM mark)
        AND ingested_at >= COALESCE((SELECT summed_through FROM mark), TIMESTAMP '9999-12-31')
    GROUP BY dt, date_trunc('hour', transaction_datetime), store_id, payment_method
),
rolled_up_day AS (
    SELECT mark.dt
    FROM mark
    WHERE mark.transactions = (
        SELECT COUNT(*) FROM transactions WHERE dt = (SELECT dt FROM mark)
    ) - (
        SELECT COALESCE(SUM(transactions), 0) FROM since_mark
    )
),
from_rows AS (
    SELECT transaction_datetime, store_id, payment_method, total_amount, dt
    FROM transactions
    WHERE dt < (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM rolled_up_day)
    UNION ALL
    SELECT transaction_datetime, store_id, payment_method, total_amount, dt
    FROM transactions
    WHERE dt > (SELECT COALESCE(MAX(dt), DATE '9999-12-31') FROM rolled_up_day)
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
        WHERE r.dt = (SELECT dt FROM rolled_up_day)
        UNION ALL
        SELECT s.dt, s.hour, s.store_id, s.payment_method, s.transactions, s.revenue
        FROM since_mark AS s
        WHERE s.dt = (SELECT dt FROM rolled_up_day)
        UNION ALL
        SELECT
            dt,
            date_trunc('hour', transaction_datetime) AS hour,
            store_id,
            payment_method,
            COUNT(*) AS transactions,
            SUM(total_amount) AS revenue
        FROM from_rows
        GROUP BY dt, date_trunc('hour', transaction_datetime), store_id, payment_method
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
