"""Response: notification channels and rules (playbooks and actions grow here)."""
