-- Lint before a fleet run: the findings on the run's pending migrations when
-- it was created, and the rules the run acknowledged to start anyway.
-- Findings: a JSON array of {rule, severity, file, line, column, message, help}.
ALTER TABLE migration_runs
    ADD COLUMN lint         jsonb  NOT NULL DEFAULT '[]',
    ADD COLUMN acknowledged text[] NOT NULL DEFAULT '{}';
