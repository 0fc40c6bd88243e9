-- The watch for late authorizations (payloom.LateCheck): an attempt
-- recorded failed after an unknown outcome is asked about again, and an
-- authorization the processor shows for it after all is voided.
--
-- late_check: '' (never watched), 'watching', 'void_pending',
-- 'refund_pending', 'done' or 'failed'. late_check_at: when the late-check
-- job next looks at the attempt, set exactly while the watch is active and
-- NULL otherwise, so the partial index holds only the few attempts being
-- watched. The default and the nullable column keep nodes of the previous
-- release working while this one rolls out.
ALTER TABLE attempts ADD COLUMN late_check text NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN late_check_at timestamptz;
CREATE INDEX attempts_late_check ON attempts (late_check_at) WHERE late_check_at IS NOT NULL;
