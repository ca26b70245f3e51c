-- How baskets are paid, per day, with each method's share of the day's baskets.
SELECT
    dt,
    payment_method,
    COUNT(*) AS transactions,
    SUM(total_amount) AS revenue,
    CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY dt) AS share_of_transactions
FROM transactions
GROUP BY dt, payment_method
