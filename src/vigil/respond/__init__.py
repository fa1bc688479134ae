"""Response: notification channels and rules (playbooks and actions grow here).

Notifications: :class:`Notifier` reads the outbox and sends what the rules ask for
(``start``/``stop`` in the server, ``run_once`` in tests and ``vigil notify run``);
:mod:`vigil.respond.service` manages channels and rules and reads the delivery log.
"""

from __future__ import annotations

from vigil.respond.notifier import Notifier, PassReport

__all__ = ["Notifier", "PassReport"]
