-- Undoes the benchmark's V2: both statements lose data (the revert is sent
-- with accept_data_loss).
ALTER TABLE agents DROP COLUMN language;
DROP TABLE call_transcripts;
