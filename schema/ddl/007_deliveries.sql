-- Notification attempts from the deliveries topic, deduplicated by their deterministic id.
CREATE TABLE IF NOT EXISTS deliveries
(
    delivery_id      UUID,
    channel_id       LowCardinality(String),
    idempotency_key  UUID,
    transition_ids   Array(UUID),
    attempt          UInt32,
    status           LowCardinality(String) COMMENT 'sent, failed, retrying, gave_up, disabled',
    http_status      Nullable(UInt16),
    latency_ms       UInt64,
    error            String COMMENT 'empty when none',
    retry_at         Nullable(DateTime64(3, 'UTC')),
    at               DateTime64(3, 'UTC'),
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (channel_id, at, delivery_id);
