-- The benchmark's V2 (scripts/bench-fleet-schema.sh): a release's schema
-- change of the usual shape, a new table with its index, row-level security
-- and grants, and a new nullable column on an existing table. Lint-clean: the
-- index is on a table created in the same migration (nothing else can hold
-- it yet), and the column has no default and may be null (no rewrite, no
-- scan).

CREATE TABLE call_transcripts (
    id           uuid PRIMARY KEY,
    subtenant_id uuid,
    call_id      uuid NOT NULL REFERENCES calls (id),
    speaker      text NOT NULL CHECK (speaker IN ('agent', 'customer')),
    offset_ms    bigint NOT NULL CHECK (offset_ms >= 0),
    body         text NOT NULL,
    owner        text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_transcripts_call_idx ON call_transcripts (call_id, offset_ms);

ALTER TABLE call_transcripts ENABLE ROW LEVEL SECURITY;
CREATE POLICY subtenant_scope ON call_transcripts
    USING (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id())
    WITH CHECK (app_subtenant_id() IS NULL OR subtenant_id = app_subtenant_id());
GRANT SELECT, INSERT ON call_transcripts TO ai_care_tenant_app;

ALTER TABLE agents ADD COLUMN language text;
