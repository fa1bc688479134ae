"""Detection: Sigma rules, the compiler to DuckDB SQL, the engine, alerts."""
