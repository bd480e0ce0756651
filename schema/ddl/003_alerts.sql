-- Alert transitions, deduplicated by their deterministic transition id.
CREATE TABLE IF NOT EXISTS alerts
(
    transition_id   UUID,
    rule_id         LowCardinality(String),
    monitor_id      LowCardinality(String),
    region          LowCardinality(String) COMMENT 'empty when the rule spans regions',
    kind            LowCardinality(String),
    from_state      LowCardinality(String),
    to_state        LowCardinality(String),
    at              DateTime64(3, 'UTC'),
    value           Float64,
    threshold       Float64,
    message         String,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (rule_id, monitor_id, at, transition_id);
