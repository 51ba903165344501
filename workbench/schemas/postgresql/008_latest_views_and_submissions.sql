-- Migration 008 for PostgreSQL: schemas/008_latest_views_and_submissions.sql, with the views written
-- with DISTINCT ON (PostgreSQL has no QUALIFY) and a regular expression in its spelling. Same views,
-- same columns, same rows; see the DuckDB file for what each is for.

CREATE OR REPLACE VIEW card_value AS
    SELECT DISTINCT ON (card_id) card_id, canonical_id, provenance, run_id, created_at AS linked_at
    FROM card_canonical ORDER BY card_id, id DESC;

CREATE OR REPLACE VIEW hidden_values AS
    SELECT l.canonical_id AS id FROM card_value l JOIN values_cards c ON c.id = l.card_id
    GROUP BY l.canonical_id HAVING bool_and(c.status <> 'active');

CREATE OR REPLACE VIEW interview_stage AS
    SELECT DISTINCT ON (interview_id, stage) interview_id, stage, payload, created_at
    FROM interview_steps ORDER BY interview_id, stage, id DESC;

CREATE OR REPLACE VIEW participant_attribute AS
    SELECT DISTINCT ON (participant_id, key) participant_id, key, value, created_at
    FROM participant_attributes ORDER BY participant_id, key, id DESC;

CREATE OR REPLACE VIEW participant_last_step AS
    SELECT DISTINCT ON (participant_id) participant_id, step, created_at
    FROM participant_steps WHERE step NOT LIKE 'plan:%' ORDER BY participant_id, id DESC;

CREATE TABLE IF NOT EXISTS participant_activity (
    participant_id     INTEGER PRIMARY KEY,
    submissions        BIGINT NOT NULL,
    last_submission_at TIMESTAMP NOT NULL
);

UPDATE comparisons SET item_a = 'v' || item_a
WHERE source = 'compare' AND item_a ~ '^[0-9]+$' AND EXISTS (
    SELECT 1 FROM canonical_values v WHERE v.deliberation_id = comparisons.deliberation_id
    AND v.source_id IS NULL AND CAST(v.id AS VARCHAR) = comparisons.item_a);
UPDATE comparisons SET item_b = 'v' || item_b
WHERE source = 'compare' AND item_b ~ '^[0-9]+$' AND EXISTS (
    SELECT 1 FROM canonical_values v WHERE v.deliberation_id = comparisons.deliberation_id
    AND v.source_id IS NULL AND CAST(v.id AS VARCHAR) = comparisons.item_b);
