"""Log-source detection: which Sigma log source (product/category/service) an event belongs to.

The mappings are data so that the detection engine can use the same tables to route rules.
"""

from __future__ import annotations

from functools import lru_cache

from vigil.events.models import LogSource

SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"

SYSMON_CATEGORIES: dict[int, str] = {
    1: "process_creation",
    2: "file_change",
    3: "network_connection",
    4: "sysmon_status",
    5: "process_termination",
    6: "driver_load",
    7: "image_load",
    8: "create_remote_thread",
    9: "raw_access_thread",
    10: "process_access",
    11: "file_event",
    12: "registry_add",
    13: "registry_set",
    14: "registry_rename",
    15: "create_stream_hash",
    16: "sysmon_status",
    17: "pipe_created",
    18: "pipe_created",
    19: "wmi_event",
    20: "wmi_event",
    21: "wmi_event",
    22: "dns_query",
    23: "file_delete",
    24: "clipboard_capture",
    25: "process_tampering",
    26: "file_delete",
    27: "file_block_executable",
    28: "file_block_shredding",
    29: "file_executable_detected",
    255: "sysmon_error",
}
"""Sysmon event ids to Sigma categories (the SigmaHQ Sysmon pipeline's table)."""

WINDOWS_SERVICES: dict[str, str] = {
    "security": "security",
    "system": "system",
    "application": "application",
    "microsoft-windows-sysmon/operational": "sysmon",
    "microsoft-windows-powershell/operational": "powershell",
    "windows powershell": "powershell-classic",
    "microsoft-windows-taskscheduler/operational": "taskscheduler",
    "microsoft-windows-wmi-activity/operational": "wmi",
    "microsoft-windows-windows defender/operational": "windefend",
    "dns server": "dns-server",
    "microsoft-windows-dns-client/operational": "dns-client",
    "microsoft-windows-driverframeworks-usermode/operational": "driver-framework",
    "microsoft-windows-windows firewall with advanced security/firewall": "firewall-as",
    "microsoft-windows-bits-client/operational": "bits-client",
    "microsoft-windows-codeintegrity/operational": "codeintegrity-operational",
    "microsoft-windows-ntlm/operational": "ntlm",
    "microsoft-windows-security-mitigations/kernel mode": "security-mitigations",
    "microsoft-windows-security-mitigations/user mode": "security-mitigations",
    "microsoft-windows-smbclient/security": "smbclient-security",
    "microsoft-windows-smbserver/security": "smbserver-security",
    "microsoft-windows-terminalservices-localsessionmanager/operational":
        "terminalservices-localsessionmanager",
    "microsoft-windows-printservice/admin": "printservice-admin",
    "microsoft-windows-printservice/operational": "printservice-operational",
    "microsoft-windows-ldap-client/debug": "ldap",
    "microsoft-windows-applocker/exe and dll": "applocker",
    "microsoft-windows-applocker/msi and script": "applocker",
    "microsoft-windows-applocker/packaged app-deployment": "applocker",
    "microsoft-windows-applocker/packaged app-execution": "applocker",
    "microsoft-windows-openssh/operational": "openssh",
    "microsoft-windows-diagnosis-scripted/operational": "diagnosis-scripted",
    "microsoft-windows-shell-core/operational": "shell-core",
    "microsoft-windows-appxdeploymentserver/operational": "appxdeployment-server",
    "microsoft-windows-appxpackaging/operational": "appxpackaging-om",
    "microsoft-windows-appmodel-runtime/admin": "appmodel-runtime",
    "microsoft-windows-capi2/operational": "capi2",
    "microsoft-windows-certificateservicesclient-lifecycle-system/operational":
        "certificateservicesclient-lifecycle-system",
    "microsoft-windows-kernel-shimengine/operational": "shim-engine",
    "microsoft-windows-vhdmp/operational": "vhdmp",
    "microsoft-windows-lsa/operational": "lsa-server",
    "microsoft-windows-hyper-v-worker-admin": "hyper-v-worker",
    "microsoft-windows-bitlocker/bitlocker management": "bitlocker",
    "microsoft-windows-sense/operational": "sense",
    "microsoft-windows-windows defender/whc": "windefend",
}
"""Windows event-log channels (lower-cased) to Sigma services."""

POWERSHELL_CATEGORIES: dict[tuple[str, int], str] = {
    ("powershell", 4103): "ps_module",
    ("powershell", 4104): "ps_script",
    ("powershell-classic", 400): "ps_classic_start",
    ("powershell-classic", 403): "ps_classic_start",
    ("powershell-classic", 600): "ps_classic_provider_start",
    ("powershell-classic", 800): "ps_classic_script",
    ("security", 4688): "process_creation",
}
"""(service, EventID) pairs that also carry a Sigma category."""


@lru_cache(maxsize=4096)
def windows_source(channel: str | None, event_id: int | None,
                   event_type: str | None = None) -> LogSource:
    """The Sigma log source of a Windows event from its channel and event id (and, for
    Sysmon's registry event 12, its EventType: a deleted key or value is ``registry_delete``)."""
    lowered = (channel or "").strip().lower()
    service = WINDOWS_SERVICES.get(lowered)
    if service is None and lowered:
        service = lowered.replace("microsoft-windows-", "").replace("/", "-").replace(" ", "-")
    category = None
    if event_id is not None:
        if lowered == SYSMON_CHANNEL:
            category = SYSMON_CATEGORIES.get(event_id)
            if event_id == 12 and event_type and event_type.lower().startswith("delete"):
                category = "registry_delete"
        elif service is not None:
            category = POWERSHELL_CATEGORIES.get((service, event_id))
    return LogSource("windows", category, service)


def as_event_id(value: object) -> int | None:
    """An EventID as an int, from an int or digit string; None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, dict):
        return as_event_id(value.get("#text") or value.get("value"))
    return None
