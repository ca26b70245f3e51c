-- Units and revenue per SKU per store per day, with name and category: top SKUs for any store
-- filter (top_skus ranks the whole chain's days from the rollup). Each line carries its
-- basket's store, so the lines are summed alone, then joined to the SKUs.
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
        dt,
        store_id,
        sku_id,
        CAST(SUM(quantity) AS BIGINT) AS units,
        SUM(quantity * unit_price) AS revenue
    FROM transaction_items
    GROUP BY dt, store_id, sku_id
) AS per_sku
LEFT JOIN skus AS k ON k.sku_id = per_sku.sku_id
