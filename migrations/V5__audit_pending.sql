-- A control-plane change writes its audit record before it runs, as
-- 'pending', and sets the result when it ends: a change whose record cannot
-- be written never runs.
--
-- NOT VALID, then VALIDATE: adding a checked constraint would scan the whole
-- log under a lock that blocks every write to it; validating afterwards
-- takes a lock that lets writes go on.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_result_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_result_check
    CHECK (result IN ('pending', 'success', 'failure')) NOT VALID;
ALTER TABLE audit_log VALIDATE CONSTRAINT audit_log_result_check;
