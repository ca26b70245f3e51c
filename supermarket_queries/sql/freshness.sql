-- The newest sale and the newest ingestion: how far behind the lake is.
SELECT
    MAX(transaction_datetime) AS latest_transaction_at,
    MAX(ingested_at) AS latest_ingested_at,
    COUNT(*) AS transactions
FROM transactions
