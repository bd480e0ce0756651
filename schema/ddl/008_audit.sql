-- Every write through the query API: who, what, before and after (specs hold secret references
-- only), deduplicated by audit id.
CREATE TABLE IF NOT EXISTS audit
(
    audit_id     UUID,
    at           DateTime64(3, 'UTC'),
    actor        LowCardinality(String),
    action       LowCardinality(String),
    resource     LowCardinality(String),
    resource_id  String,
    before       String COMMENT 'JSON of the spec before, empty when created',
    after        String COMMENT 'JSON of the spec after, empty when deleted',
    request_id   String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, audit_id)
