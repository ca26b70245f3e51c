-- How many baskets had 1, 2, 3 ... lines, per store per day: basket_size with the store.
-- Baskets with at least k lines = lines numbered k, counted per store (each line carries its
-- basket's store, so no join to the transactions).
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
        SELECT dt, store_id, line_number, COUNT(*) AS at_least
        FROM transaction_items
        GROUP BY dt, store_id, line_number
    ) AS lines_numbered
) AS per_size
WHERE baskets > 0
