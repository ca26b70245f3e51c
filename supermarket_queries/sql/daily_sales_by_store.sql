-- Revenue and baskets per store per day.
SELECT
    t.dt,
    t.store_id,
    s.store_name,
    s.store_location,
    COUNT(*) AS transactions,
    SUM(t.total_amount) AS revenue
FROM transactions AS t
LEFT JOIN supermarkets AS s ON s.store_id = t.store_id
GROUP BY t.dt, t.store_id, s.store_name, s.store_location
