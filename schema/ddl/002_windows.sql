-- Window summaries. One row per (monitor, region, window start); corrections and replays write
-- the same key with a version, and ReplacingMergeTree(version) keeps the newest. Read with FINAL.
-- The sketch is stored as parallel arrays so SQL clients can merge windows with sumMap and
-- compute percentiles with the same relative error bound as the processor.
CREATE TABLE IF NOT EXISTS windows_1m
(
    monitor_id          LowCardinality(String),
    region              LowCardinality(String),
    window_start        DateTime64(3, 'UTC'),
    window_end          DateTime64(3, 'UTC'),
    version             UInt64,
    count               UInt64,
    ok_count            UInt64,
    availability        Float64,
    errors              Map(LowCardinality(String), UInt64),
    status_1xx          UInt64,
    status_2xx          UInt64,
    status_3xx          UInt64,
    status_4xx          UInt64,
    status_5xx          UInt64,
    total_min_us        UInt64,
    total_max_us        UInt64,
    total_mean_us       Float64,
    p50_us              Float64,
    p75_us              Float64,
    p90_us              Float64,
    p95_us              Float64,
    p99_us              Float64,
    p999_us             Float64,
    dns_mean_us         Float64,
    connect_mean_us     Float64,
    tls_mean_us         Float64,
    ttfb_mean_us        Float64,
    ttfb_p95_us         Float64,
    dns_count           UInt64 COMMENT 'checks with a DNS phase (weight of dns_mean_us)',
    connect_count       UInt64,
    tls_count           UInt64,
    ttfb_count          UInt64,
    assertion_failures  UInt64,
    sketch_alpha        Float64,
    sketch_keys         Array(Int32),
    sketch_counts       Array(UInt64),
    sketch_zero_count   UInt64,
    ttfb_sketch_keys    Array(Int32),
    ttfb_sketch_counts  Array(UInt64),
    ttfb_sketch_zero_count UInt64,
    anomaly_latency     Float64,
    anomaly_errors      Float64,
    anomaly_score       Float64,
    anomaly_reason      String,
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (monitor_id, region, window_start)
TTL toDateTime(window_start) + INTERVAL 90 DAY DELETE;

CREATE TABLE IF NOT EXISTS windows_1h AS windows_1m
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (monitor_id, region, window_start)
TTL toDateTime(window_start) + INTERVAL 730 DAY DELETE;
