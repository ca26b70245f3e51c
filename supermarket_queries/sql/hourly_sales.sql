-- Baskets and revenue per UTC hour.
SELECT
    dt,
    date_trunc('hour', transaction_datetime) AS hour,
    COUNT(*) AS transactions,
    SUM(total_amount) AS revenue
FROM transactions
GROUP BY dt, date_trunc('hour', transaction_datetime)
