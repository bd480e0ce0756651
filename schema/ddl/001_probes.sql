-- Raw probe results, one row per check. Re-inserting the same event (replay, retry) is
-- collapsed by ReplacingMergeTree on the sorting key, which ends with the event id.
CREATE TABLE IF NOT EXISTS probes
(
    event_id        UUID,
    monitor_id      LowCardinality(String),
    region          LowCardinality(String),
    agent           LowCardinality(String),
    scheduled_at    DateTime64(3, 'UTC'),
    event_time      DateTime64(3, 'UTC'),
    method          LowCardinality(String),
    url             String,
    status_code     UInt16 COMMENT '0 when no response was received',
    outcome         LowCardinality(String),
    error           String,
    dns_us          Nullable(UInt64),
    connect_us      Nullable(UInt64),
    tls_us          Nullable(UInt64),
    ttfb_us         Nullable(UInt64),
    total_us        UInt64,
    response_size   Nullable(UInt64),
    assertion_conditions Array(String),
    assertion_passed     Array(Bool),
    assertion_actuals    Array(Nullable(String)),
    tls_cert_expiry Nullable(DateTime64(3, 'UTC')),
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (monitor_id, region, event_time, event_id)
TTL toDateTime(event_time) + INTERVAL 30 DAY DELETE;
