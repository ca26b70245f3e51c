-- Revenue and baskets per store per day: store_hourly_sales summed over the day's hours and
-- payment methods. Aggregates first and joins the store names to the small result.
SELECT
    per_store.dt,
    per_store.store_id,
    s.store_name,
    s.store_location,
    per_store.transactions,
    per_store.revenue
FROM (
    SELECT dt, store_id, CAST(SUM(transactions) AS BIGINT) AS transactions, SUM(revenue) AS revenue
    FROM store_hourly_sales
    GROUP BY dt, store_id
) AS per_store
LEFT JOIN supermarkets AS s ON s.store_id = per_store.store_id
