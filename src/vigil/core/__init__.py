"""Core: configuration, errors, ids, time, the state database, tokens, metrics."""
