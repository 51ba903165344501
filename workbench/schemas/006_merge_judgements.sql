-- Migration 006: "Are these two the same value?" — participants' answers and LLM verdicts about
-- candidate merges of canonical values. Append-only events: the latest answer of a participant
-- (or of an LLM model) about a pair wins, as a query in workbench/store. A pair is two cards, the
-- ones shown for the two values (card_a < card_b), so an answer keeps its meaning when the values
-- around those cards are re-clustered. Timestamps are naive UTC.

CREATE TABLE IF NOT EXISTS merge_judgements (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    deliberation_id VARCHAR NOT NULL,
    card_a          INTEGER NOT NULL,
    card_b          INTEGER NOT NULL,
    source          VARCHAR NOT NULL,         -- participant | llm
    participant_id  INTEGER,                  -- source participant: who answered
    answer          VARCHAR NOT NULL,         -- same | different | not_sure
    revision        INTEGER NOT NULL DEFAULT 0, -- source participant: earlier answers of theirs to this pair
    model           VARCHAR,                  -- source llm: the model that answered
    reason          VARCHAR,                  -- source llm: its reason, in a sentence
    run_id          INTEGER,                  -- source llm: the dedup run that asked
    created_at      TIMESTAMP NOT NULL,
    CHECK (card_a < card_b),
    CHECK (answer IN ('same', 'different', 'not_sure')),
    CHECK (source IN ('participant', 'llm'))
);
-- A repeated submission (same participant, pair, answer, and no answer in between) clashes here
-- and is answered with the stored row instead of a duplicate; NULL participant ids (LLM) never clash.
CREATE UNIQUE INDEX IF NOT EXISTS merge_judgements_once
    ON merge_judgements (deliberation_id, participant_id, card_a, card_b, revision);
CREATE INDEX IF NOT EXISTS merge_judgements_pair ON merge_judgements (deliberation_id, card_a, card_b);
