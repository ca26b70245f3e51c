-- How many baskets had 1, 2, 3 ... lines, per day.
SELECT
    dt,
    lines AS basket_lines,
    COUNT(*) AS baskets
FROM (
    SELECT dt, transaction_id, COUNT(*) AS lines
    FROM transaction_items
    GROUP BY dt, transaction_id
) AS baskets
GROUP BY dt, lines
