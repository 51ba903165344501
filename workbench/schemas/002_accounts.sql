-- Migration 002: staff accounts (facilitators, researchers), their sessions, sign-in attempts
-- and the audit log of moderation actions.
-- Passwords and session tokens never reach the database: only an argon2 hash of the password
-- and a sha256 of the token do. Sign-in attempts and audit entries are append-only events.
-- Timestamps are naive UTC.

CREATE SEQUENCE IF NOT EXISTS seq_user START 1;
CREATE SEQUENCE IF NOT EXISTS seq_audit START 1;

CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY DEFAULT nextval('seq_user'),
    username      VARCHAR NOT NULL UNIQUE,      -- lower case, see workbench.auth.normalise_username
    role          VARCHAR NOT NULL CHECK (role IN ('facilitator', 'researcher')),
    password_hash VARCHAR NOT NULL,             -- argon2id, in PHC string format ('$argon2id$v=19$...')
    created_at    TIMESTAMP NOT NULL,
    disabled_at   TIMESTAMP                     -- set: cannot sign in, and its sessions stop working
);

CREATE TABLE IF NOT EXISTS staff_sessions (
    token_hash VARCHAR PRIMARY KEY,             -- sha256 of the token; the token stays in the browser session
    user_id    INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at   TIMESTAMP                        -- set on sign-out
);

-- Events: every password check, for slowing down repeated failures (policy: workbench/auth.py).
CREATE TABLE IF NOT EXISTS sign_in_attempts (
    id         BIGINT PRIMARY KEY DEFAULT nextval('seq_event'),
    username   VARCHAR NOT NULL,                -- as typed (normalised), whether or not such a user exists
    ok         BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_attempts_username ON sign_in_attempts (username, created_at);

-- Events: who did what to which thing (moderation, exports, ...).
CREATE TABLE IF NOT EXISTS audit_log (
    id              BIGINT PRIMARY KEY DEFAULT nextval('seq_audit'),
    deliberation_id VARCHAR,                    -- NULL for actions outside a deliberation
    actor_id        INTEGER,                    -- users.id; NULL for the command line / the system
    action          VARCHAR NOT NULL,           -- e.g. 'hide_card', 'merge_values', 'export'
    target          VARCHAR,                    -- e.g. 'card:12', 'canonical:3'
    details         JSON,
    created_at      TIMESTAMP NOT NULL
);
