-- Units and revenue per SKU per store per day, with name and category: top SKUs for any store
-- filter (top_skus ranks the whole chain's days from the rollup). Summed before the join.
SELECT
    per_sku.dt,
    per_sku.store_id,
    per_sku.sku_id,
    k.product_name,
    k.category,
    per_sku.units,
    per_sku.revenue
FROM (
    SELECT
        i.dt,
        t.store_id,
        i.sku_id,
        CAST(SUM(i.quantity) AS BIGINT) AS units,
        SUM(i.quantity * i.unit_price) AS revenue
    FROM transaction_items AS i
    JOIN transactions AS t ON t.dt = i.dt AND t.transaction_id = i.transaction_id
    GROUP BY i.dt, t.store_id, i.sku_id
) AS per_sku
LEFT JOIN skus AS k ON k.sku_id = per_sku.sku_id
