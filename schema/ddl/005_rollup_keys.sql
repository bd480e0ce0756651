-- Keys of the hourly rollups one processor batch rebuilds: (monitor, region, hour) rows tagged
-- with the batch id. The rollup statement selects its keys from here, so its size does not grow
-- with the number of series a batch touches. Rows are only needed until the rollup ran.
CREATE TABLE IF NOT EXISTS rollup_keys
(
    batch       UUID,
    monitor_id  LowCardinality(String),
    region      LowCardinality(String),
    hour        DateTime64(3, 'UTC'),
    inserted_at DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (batch, monitor_id, region, hour)
TTL inserted_at + INTERVAL 1 DAY DELETE
