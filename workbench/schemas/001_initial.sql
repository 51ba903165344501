-- Migration 001: the workbench's first schema.
-- Answers, votes, attributes and interview steps are append-only events with timestamps;
-- "a participant's latest answer wins" is a query in workbench/store, never an UPDATE.
-- Timestamps are naive UTC.

CREATE SEQUENCE IF NOT EXISTS seq_context START 1;
CREATE SEQUENCE IF NOT EXISTS seq_participant START 1;
CREATE SEQUENCE IF NOT EXISTS seq_interview START 1;
CREATE SEQUENCE IF NOT EXISTS seq_card START 1;
CREATE SEQUENCE IF NOT EXISTS seq_canonical START 1;
CREATE SEQUENCE IF NOT EXISTS seq_event START 1;
CREATE SEQUENCE IF NOT EXISTS seq_run START 1;

CREATE TABLE IF NOT EXISTS deliberations (
    id            VARCHAR PRIMARY KEY,          -- a slug, e.g. 'demo'
    title         VARCHAR NOT NULL,
    description   VARCHAR NOT NULL DEFAULT '',
    consent_text  VARCHAR NOT NULL DEFAULT '',
    licence       VARCHAR NOT NULL DEFAULT '',
    open_signup   BOOLEAN NOT NULL DEFAULT FALSE,
    settings      JSON NOT NULL,                -- rounds per participant, demographics questionnaire, ...
    source        VARCHAR NOT NULL DEFAULT 'yaml', -- yaml | mge | polis | comparisons | app
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS questions (
    id              VARCHAR PRIMARY KEY,        -- '<deliberation>/<slug>'
    deliberation_id VARCHAR NOT NULL,
    slug            VARCHAR NOT NULL,
    title           VARCHAR NOT NULL,
    prompt          VARCHAR NOT NULL,
    position        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS contexts (
    id              INTEGER PRIMARY KEY DEFAULT nextval('seq_context'),
    deliberation_id VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,           -- e.g. 'When seeking clarity'
    status          VARCHAR NOT NULL DEFAULT 'approved',  -- approved | proposed | merged
    merged_into     INTEGER,
    proposed_by     INTEGER,
    created_at      TIMESTAMP NOT NULL,
    UNIQUE (deliberation_id, name)
);

CREATE TABLE IF NOT EXISTS question_contexts (
    question_id VARCHAR NOT NULL,
    context_id  INTEGER NOT NULL,
    PRIMARY KEY (question_id, context_id)
);

CREATE TABLE IF NOT EXISTS participants (
    id              INTEGER PRIMARY KEY DEFAULT nextval('seq_participant'),
    deliberation_id VARCHAR NOT NULL,
    source_id       VARCHAR,                    -- id in imported data; NULL for app participants
    token_hash      VARCHAR UNIQUE,             -- sha256 of the invite token; the token itself is never stored
    signup          VARCHAR NOT NULL,           -- invite | open | demo | import
    revoked_at      TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS participants_source ON participants (deliberation_id, source_id);

CREATE TABLE IF NOT EXISTS participant_attributes (   -- events: latest value per (participant, key) wins
    id             BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    participant_id INTEGER NOT NULL,
    key            VARCHAR NOT NULL,
    value          VARCHAR,
    created_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS participant_steps (        -- events: where a participant is in the flow
    id             BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    participant_id INTEGER NOT NULL,
    step           VARCHAR NOT NULL,          -- consent | demographics | question | interview | card | wiser | endorse | compare | done
    payload        JSON,
    created_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS interviews (
    id             INTEGER PRIMARY KEY DEFAULT nextval('seq_interview'),
    participant_id INTEGER NOT NULL,
    question_id    VARCHAR NOT NULL,
    mode           VARCHAR NOT NULL,          -- guided | llm
    created_at     TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS interview_steps (          -- events: each submitted stage, latest per stage wins
    id           BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    interview_id INTEGER NOT NULL,
    stage        VARCHAR NOT NULL,
    payload      JSON NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS interview_messages (       -- the chat transcript of an LLM interview
    id           BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    interview_id INTEGER NOT NULL,
    role         VARCHAR NOT NULL,            -- system | user | assistant | error
    content      VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS values_cards (
    id              INTEGER PRIMARY KEY DEFAULT nextval('seq_card'),
    deliberation_id VARCHAR NOT NULL,
    question_id     VARCHAR,
    author_id       INTEGER,                  -- participant
    interview_id    INTEGER,
    source_id       VARCHAR,                  -- id in imported data
    kind            VARCHAR NOT NULL DEFAULT 'card',   -- card | statement (a Polis comment)
    title           VARCHAR NOT NULL,
    description     VARCHAR NOT NULL DEFAULT '',
    policies        VARCHAR[] NOT NULL,
    status          VARCHAR NOT NULL DEFAULT 'active', -- active | hidden | invalid
    hidden_reason   VARCHAR,
    overrides       VARCHAR[] NOT NULL DEFAULT [],     -- soft-warning codes the author overrode
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS values_cards_source ON values_cards (deliberation_id, kind, source_id);

CREATE TABLE IF NOT EXISTS card_contexts (
    card_id    INTEGER NOT NULL,
    context_id INTEGER NOT NULL,
    PRIMARY KEY (card_id, context_id)
);

CREATE TABLE IF NOT EXISTS canonical_values (
    id              INTEGER PRIMARY KEY DEFAULT nextval('seq_canonical'),
    deliberation_id VARCHAR NOT NULL,
    question_id     VARCHAR,
    source_id       VARCHAR,                  -- id in imported data
    title           VARCHAR NOT NULL,
    description     VARCHAR NOT NULL DEFAULT '',
    policies        VARCHAR[] NOT NULL,
    origin          VARCHAR NOT NULL,         -- dedup | import | manual | split
    retired_at      TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS canonical_values_source ON canonical_values (deliberation_id, source_id);

CREATE TABLE IF NOT EXISTS card_canonical (           -- events: latest link per card wins
    id           BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    card_id      INTEGER NOT NULL,
    canonical_id INTEGER NOT NULL,
    provenance   VARCHAR NOT NULL,            -- dedup | import | merge | split | manual
    run_id       INTEGER,
    created_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS embeddings (
    card_id    INTEGER NOT NULL,
    model      VARCHAR NOT NULL,
    text_hash  VARCHAR NOT NULL,
    vector     FLOAT[] NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (card_id, model, text_hash)
);

CREATE TABLE IF NOT EXISTS wiser_answers (            -- "In context C, did moving from A to B make them wiser?"
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    deliberation_id VARCHAR NOT NULL,
    participant_id  INTEGER NOT NULL,
    from_value_id   INTEGER NOT NULL,         -- canonical value
    to_value_id     INTEGER NOT NULL,
    context_id      INTEGER NOT NULL,
    answer          VARCHAR NOT NULL,         -- upgrade | no_upgrade | not_sure
    story           VARCHAR,
    comment         VARCHAR,
    source_key      VARCHAR,                  -- identifies an imported row, so re-imports add nothing
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS wiser_answers_source ON wiser_answers (deliberation_id, source_key);

CREATE TABLE IF NOT EXISTS endorsements (             -- agree / disagree / pass on a value (canonical or card/statement)
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    deliberation_id VARCHAR NOT NULL,
    participant_id  INTEGER NOT NULL,
    question_id     VARCHAR,
    canonical_id    INTEGER,
    card_id         INTEGER,
    vote            VARCHAR NOT NULL,         -- agree | disagree | pass
    source_key      VARCHAR,                  -- identifies an imported row, so re-imports add nothing
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS endorsements_source ON endorsements (deliberation_id, source_key);

CREATE TABLE IF NOT EXISTS comparisons (              -- "which of these two should guide the answer?"
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    deliberation_id VARCHAR NOT NULL,
    participant_id  INTEGER NOT NULL,
    question_id     VARCHAR,
    context         VARCHAR,
    prompt          VARCHAR,
    item_a          VARCHAR NOT NULL,         -- canonical value id, or an imported item id
    item_b          VARCHAR NOT NULL,
    winner          VARCHAR NOT NULL,         -- a | b | tie (can't choose)
    source          VARCHAR NOT NULL,         -- compare | import | demo
    source_key      VARCHAR,                  -- identifies an imported row, so re-imports add nothing
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS comparisons_source ON comparisons (deliberation_id, source_key);

CREATE TABLE IF NOT EXISTS analysis_runs (
    id              INTEGER PRIMARY KEY DEFAULT nextval('seq_run'),
    deliberation_id VARCHAR,
    kind            VARCHAR NOT NULL,         -- dedup | graph | groups | fit | import | export
    params          JSON NOT NULL,
    status          VARCHAR NOT NULL,         -- running | done | failed
    result          JSON,
    error           VARCHAR,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP
);
