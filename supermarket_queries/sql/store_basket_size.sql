-- How many baskets had 1, 2, 3 ... lines, per store per day: basket_size with the store.
-- Baskets with at least k lines = lines numbered k, counted per store through the basket's
-- transaction (same dt, so the join prunes by day on both sides).
SELECT dt, store_id, basket_lines, baskets
FROM (
    SELECT
        dt,
        store_id,
        line_number AS basket_lines,
        at_least - COALESCE(
            LEAD(at_least) OVER (PARTITION BY dt, store_id ORDER BY line_number), 0
        ) AS baskets
    FROM (
        SELECT i.dt, t.store_id, i.line_number, COUNT(*) AS at_least
        FROM transaction_items AS i
        JOIN transactions AS t ON t.dt = i.dt AND t.transaction_id = i.transaction_id
        GROUP BY i.dt, t.store_id, i.line_number
    ) AS lines_numbered
) AS per_size
WHERE baskets > 0
