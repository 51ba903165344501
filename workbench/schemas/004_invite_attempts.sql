-- Migration 004: refused invite links, for slowing down and noticing token guessing.
-- One row per refused `?invite=` look-up (unknown or revoked token). The token itself is never
-- stored, nor its hash: only a sha256 of the browser session that tried it (Streamlit gives no
-- reliable client IP), or NULL when the caller did not know the session. Append-only events; the
-- policy that reads them is workbench/participation.py (InviteGuessPolicy). Timestamps are naive UTC.

CREATE TABLE IF NOT EXISTS invite_refusals (
    id          BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    client_hash VARCHAR,                    -- sha256 of the browser session id; NULL when unknown
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS invite_refusals_time ON invite_refusals (created_at);
CREATE INDEX IF NOT EXISTS invite_refusals_client ON invite_refusals (client_hash, created_at);
