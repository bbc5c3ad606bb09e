"""PublishResult: the outcome (outcome), the decision report (report), the audit trail (audit), the execution's own
cost (cost) and their publication (publish)."""
