"""The built-in parsers; importing this package registers every format."""

from vigil.events.parsers import (  # noqa: F401
    access,
    cef,
    cloudtrail,
    jsonlines,
    linux,
    suricata,
    syslog,
    windows,
    zeek,
)
