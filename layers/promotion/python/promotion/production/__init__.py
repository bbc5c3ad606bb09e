"""Production state and the writes to it: reading it (read), BackupProduction (backup), WriteParameters (parameters),
WriteConfig (config), Rollback's restore (restore) and the operator's rollback request (operator_rollback)."""
