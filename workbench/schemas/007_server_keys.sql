-- Migration 007: keys the server signs with (e.g. the staff session cookie, see workbench/auth.py).
-- One random key per purpose, made on first use and kept, so cookies stay valid across restarts
-- and across app processes sharing the database. A key only signs: a cookie also needs a session
-- token whose hash is in staff_sessions, so reading this table does not let anyone sign in.

CREATE TABLE IF NOT EXISTS server_keys (
    name       VARCHAR PRIMARY KEY,             -- what the key signs, e.g. 'staff-cookie'
    key        VARCHAR NOT NULL,                -- 32 random bytes, hex
    created_at TIMESTAMP NOT NULL
);
