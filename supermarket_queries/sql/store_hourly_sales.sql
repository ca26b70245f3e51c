-- Baskets and revenue per store, UTC hour and payment method, with the store's name. Hours
-- make any store-local day exact, so one view feeds the dashboard's tiles, sales by store,
-- sales over time and payment mix, for any store filter. Aggregates before the join.
SELECT
    per_hour.dt,
    per_hour.hour,
    per_hour.store_id,
    s.store_name,
    per_hour.payment_method,
    per_hour.transactions,
    per_hour.revenue
FROM (
    SELECT
        dt,
        date_trunc('hour', transaction_datetime) AS hour,
        store_id,
        payment_method,
        COUNT(*) AS transactions,
        SUM(total_amount) AS revenue
    FROM transactions
    GROUP BY dt, date_trunc('hour', transaction_datetime), store_id, payment_method
) AS per_hour
LEFT JOIN supermarkets AS s ON s.store_id = per_hour.store_id
