-- How baskets are paid, per day, with each method's share of the day's baskets:
-- store_hourly_sales summed over stores and hours.
SELECT
    dt,
    payment_method,
    CAST(SUM(transactions) AS BIGINT) AS transactions,
    SUM(revenue) AS revenue,
    CAST(SUM(transactions) AS DOUBLE) / SUM(SUM(transactions)) OVER (PARTITION BY dt)
        AS share_of_transactions
FROM store_hourly_sales
GROUP BY dt, payment_method
