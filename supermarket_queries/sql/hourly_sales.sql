-- Baskets and revenue per UTC hour: store_hourly_sales summed over stores and payment methods.
SELECT
    dt,
    hour,
    CAST(SUM(transactions) AS BIGINT) AS transactions,
    SUM(revenue) AS revenue
FROM store_hourly_sales
GROUP BY dt, hour
