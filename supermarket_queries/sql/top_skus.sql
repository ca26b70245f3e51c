-- Units and revenue per SKU per day, ranked within the day by revenue and by units.
-- Aggregates first and joins the product names to the small result, not to every line.
SELECT
    per_sku.dt,
    per_sku.sku_id,
    k.product_name,
    k.category,
    per_sku.units,
    per_sku.revenue,
    RANK() OVER (PARTITION BY per_sku.dt ORDER BY per_sku.revenue DESC) AS revenue_rank,
    RANK() OVER (PARTITION BY per_sku.dt ORDER BY per_sku.units DESC) AS units_rank
FROM (
    SELECT
        dt,
        sku_id,
        CAST(SUM(quantity) AS BIGINT) AS units,
        SUM(quantity * unit_price) AS revenue
    FROM transaction_items
    GROUP BY dt, sku_id
) AS per_sku
LEFT JOIN skus AS k ON k.sku_id = per_sku.sku_id
