-- Units and revenue per SKU per day, ranked within the day by revenue and by units.
SELECT
    dt,
    sku_id,
    product_name,
    category,
    units,
    revenue,
    RANK() OVER (PARTITION BY dt ORDER BY revenue DESC) AS revenue_rank,
    RANK() OVER (PARTITION BY dt ORDER BY units DESC) AS units_rank
FROM (
    SELECT
        i.dt,
        i.sku_id,
        k.product_name,
        k.category,
        CAST(SUM(i.quantity) AS BIGINT) AS units,
        SUM(i.quantity * i.unit_price) AS revenue
    FROM transaction_items AS i
    LEFT JOIN skus AS k ON k.sku_id = i.sku_id
    GROUP BY i.dt, i.sku_id, k.product_name, k.category
) AS per_sku
