-- Multi-step checks: the probe result's steps (name, method, URL, status, outcome, error,
-- timings and assertions of each) as a JSON array; '' for a check of one request.
ALTER TABLE probes ADD COLUMN IF NOT EXISTS steps String DEFAULT ''
    COMMENT 'JSON array of the steps of a multi-step check, empty for one request';
