-- A control-plane change writes its audit record before it runs, as
-- 'pending', and sets the result when it ends: a change whose record cannot
-- be written never runs.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_result_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_result_check
    CHECK (result IN ('pending', 'success', 'failure'));
