-- Revenue and baskets per store per day.
-- Aggregates first and joins the store names to the small result.
SELECT
    per_store.dt,
    per_store.store_id,
    s.store_name,
    s.store_location,
    per_store.transactions,
    per_store.revenue
FROM (
    SELECT dt, store_id, COUNT(*) AS transactions, SUM(total_amount) AS revenue
    FROM transactions
    GROUP BY dt, store_id
) AS per_store
LEFT JOIN supermarkets AS s ON s.store_id = per_store.store_id
