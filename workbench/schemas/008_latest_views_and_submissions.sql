-- Migration 007: the "latest wins" derivations as views, one lock row per participant for their
-- submissions, and workbench-made values named by their public id in comparisons.
--
-- Views (the store reads these instead of repeating the SQL; the latest row is the one with the
-- highest id, so a NULL in the latest row wins too, as it should):
--   card_value            the current canonical value of every linked card, with its provenance
--   hidden_values         values that have member cards and all of them hidden (they leave the graph)
--   interview_stage       the latest payload of every stage of every interview
--   participant_attribute the latest value of every attribute of every participant
--   participant_last_step the latest step event of every participant

CREATE OR REPLACE VIEW card_value AS
    SELECT card_id, canonical_id, provenance, run_id, created_at AS linked_at FROM card_canonical
    QUALIFY row_number() OVER (PARTITION BY card_id ORDER BY id DESC) = 1;

CREATE OR REPLACE VIEW hidden_values AS
    SELECT l.canonical_id AS id FROM card_value l JOIN values_cards c ON c.id = l.card_id
    GROUP BY l.canonical_id HAVING bool_and(c.status <> 'active');

CREATE OR REPLACE VIEW interview_stage AS
    SELECT interview_id, stage, payload, created_at FROM interview_steps
    QUALIFY row_number() OVER (PARTITION BY interview_id, stage ORDER BY id DESC) = 1;

CREATE OR REPLACE VIEW participant_attribute AS
    SELECT participant_id, key, value, created_at FROM participant_attributes
    QUALIFY row_number() OVER (PARTITION BY participant_id, key ORDER BY id DESC) = 1;

CREATE OR REPLACE VIEW participant_last_step AS
    SELECT participant_id, step, created_at FROM participant_steps WHERE step NOT LIKE 'plan:%'
    QUALIFY row_number() OVER (PARTITION BY participant_id ORDER BY id DESC) = 1;

-- A participant submission that has no unique key of its own (consent, about you, the question, an
-- interview stage, the card, a round's plan or its end) updates its participant's row here first,
-- inside the submission's transaction. Two such submissions of one participant at once (a double
-- click, two tabs) then conflict, and the one retried sees the other's result instead of writing a
-- duplicate. (Judgements have one: the unique (deliberation_id, source_key) of their table.)
CREATE TABLE IF NOT EXISTS participant_activity (
    participant_id     INTEGER PRIMARY KEY,
    submissions        BIGINT NOT NULL,
    last_submission_at TIMESTAMP NOT NULL
);

-- Comparisons made in the app named a workbench-made value by its bare number ("5"); its public id
-- is now "v5" (workbench/ids.py). Imported item ids are left as they were.
UPDATE comparisons SET item_a = 'v' || item_a
WHERE source = 'compare' AND regexp_full_match(item_a, '[0-9]+') AND EXISTS (
    SELECT 1 FROM canonical_values v WHERE v.deliberation_id = comparisons.deliberation_id
    AND v.source_id IS NULL AND CAST(v.id AS VARCHAR) = comparisons.item_a);
UPDATE comparisons SET item_b = 'v' || item_b
WHERE source = 'compare' AND regexp_full_match(item_b, '[0-9]+') AND EXISTS (
    SELECT 1 FROM canonical_values v WHERE v.deliberation_id = comparisons.deliberation_id
    AND v.source_id IS NULL AND CAST(v.id AS VARCHAR) = comparisons.item_b);
