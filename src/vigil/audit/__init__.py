"""The audit trail: a tamper-evident chain of every change and who made it."""
