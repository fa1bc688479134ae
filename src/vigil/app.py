"""The running instance: settings plus the state database and event store, opened on demand.

The CLI and the API share this one place that wires the contexts together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vigil.core.config import Settings, load_settings

if TYPE_CHECKING:  # imported on first use: a command that needs neither starts faster
    from vigil.alerts import GroupingPolicy
    from vigil.core.db import StateDB
    from vigil.store.duck import EventStore


class Vigil:
    """One Vigil instance on one data folder."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: StateDB | None = None
        self._store: EventStore | None = None

    @classmethod
    def load(cls, data_dir: Path | None = None) -> Vigil:
        return cls(load_settings(data_dir))

    @property
    def db(self) -> StateDB:
        """The state database, migrated to the current schema."""
        if self._db is None:
            from vigil.core.db import StateDB

            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            db = StateDB(self.settings.resolved_state_url)
            db.upgrade()
            self._db = db
        return self._db

    @property
    def grouping(self) -> GroupingPolicy:
        """How new alerts join incidents (``alerts.group_window_seconds``, ``alerts.group_by``)."""
        from vigil.alerts import GroupingPolicy

        alerts = self.settings.alerts
        return GroupingPolicy.of(alerts.group_window_seconds, alerts.group_by)

    @property
    def key_folder(self) -> Path:
        """Where the instance's signing keys live (the audit checkpoint key)."""
        return self.settings.data_dir / "keys"

    @property
    def store(self) -> EventStore:
        """The event store (opened for writing: one process at a time)."""
        if self._store is None:
            from vigil.store.duck import EventStore

            self._store = EventStore(self.settings.events_path,
                                     memory_limit=self.settings.store.memory_limit,
                                     threads=self.settings.store.threads)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._db is not None:
            self._db.dispose()
            self._db = None
