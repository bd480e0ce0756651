-- Latest spec of every monitor, materialized from the compacted monitors topic. The version is
-- the topic offset, so the newest event wins; deleted monitors keep a row with deleted = 1.
CREATE TABLE IF NOT EXISTS monitors
(
    monitor_id      String,
    name            String,
    tags            Array(LowCardinality(String)),
    url             String,
    interval_ms     UInt64,
    enabled         Bool,
    spec            String COMMENT 'MonitorSpec as JSON',
    deleted         Bool,
    version         UInt64,
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY monitor_id;
