-- Migration 005: staff accounts may carry an email address, for signing in through an OpenID
-- Connect provider (st.login). The provider's verified email claim is matched to this column
-- (stored lower case, see workbench.auth.normalise_email); an account without one can only sign
-- in with its password.

ALTER TABLE users ADD COLUMN IF NOT EXISTS email VARCHAR;
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email);
