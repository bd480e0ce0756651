-- Severity and routing labels of alert transitions.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS severity LowCardinality(String) DEFAULT 'warning' AFTER threshold;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS labels Map(String, String) AFTER severity
