"""Core: configuration, errors, ids, time, the state database, roles and permissions, metrics."""
