-- Rejected records per reason, with when and where the latest was rejected: bad data, counted.
SELECT
    reason,
    COUNT(*) AS records,
    COUNT(DISTINCT source_key) AS source_files,
    MAX(from_iso8601_timestamp(ingested_at)) AS last_rejected_at,
    MAX_BY(source_key, ingested_at) AS last_source_key
FROM quarantine
GROUP BY reason
