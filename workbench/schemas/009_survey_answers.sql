-- Migration 009: answers to the closing survey ("Where my value sits in the graph is fair", ...).
-- Append-only events, like every judgement: a participant's latest answer to a question wins, as a
-- query in workbench/store. The questions themselves are the deliberation's settings (its YAML).
-- Timestamps are naive UTC.

CREATE TABLE IF NOT EXISTS survey_answers (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    deliberation_id VARCHAR NOT NULL,
    participant_id  INTEGER NOT NULL,
    question        VARCHAR NOT NULL,         -- the survey question's key, e.g. 'position_fair'
    answer          VARCHAR NOT NULL,         -- yes | not_sure | no
    canonical_id    INTEGER,                  -- the value the answer is about (the participant's own), when known
    source_key      VARCHAR,                  -- app:<participant>:survey:<question>, or the imported row's key
    created_at      TIMESTAMP NOT NULL,
    CHECK (answer IN ('yes', 'not_sure', 'no'))
);
-- A repeated submission or a re-import clashes here and adds nothing.
CREATE UNIQUE INDEX IF NOT EXISTS survey_answers_source ON survey_answers (deliberation_id, source_key);
