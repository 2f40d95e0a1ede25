-- Console sessions signed out before they expired. The session cookie is
-- sealed and carries its own expiry, so signing out cannot unmake it; its
-- id recorded here makes every replica refuse a copy of it. A row is
-- useless once its session would have expired anyway, and the retention
-- pass deletes it then.
CREATE TABLE revoked_console_sessions (
    id         text        PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_console_sessions_expiry ON revoked_console_sessions (expires_at);
