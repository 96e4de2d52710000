-- Every new time entry adds up its person's hours of that day, to reject a day over 24
-- hours. With the employee alone in the index, that read visited every entry the person
-- ever logged, so each insert slowed as the person's history grew. The index now contains the
-- date after the employee: a person's day is one range, and reads by the employee alone
-- still use the index's first columns.
DROP INDEX IF EXISTS records_by_employee;
CREATE INDEX records_by_employee ON records (
    kind, json_extract(fields, '$.employee'), json_extract(fields, '$.date'));
