"""Syslog listeners (UDP, TCP, TCP+TLS) feeding the spool.

TCP: newline or octet-counted framing (RFC 6587), detected from the first byte of each
connection. Each chunk read is made durable in the spool before the next one is read, so a
slow store slows the sender through the TCP window instead of growing memory. UDP has no way
to slow a sender: datagrams that arrive while the spool is full are counted as dropped.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from vigil.core import logging as vlog
from vigil.core.errors import OverloadedError, ParseError
from vigil.core.timeutil import to_micros, utcnow
from vigil.events.parsers.syslog import is_octet_counted, split_octet_counted
from vigil.ingest.runtime import IngestRuntime
from vigil.ingest.spool import SpoolRecord

log = vlog.get("vigil.ingest.syslog")
READ_SIZE = 256 * 1024


def _records(frames: list[bytes], origin: str) -> list[SpoolRecord]:
    now = to_micros(utcnow())
    return [SpoolRecord("syslog", origin, now, f.rstrip(b"\r\n")) for f in frames
            if f.strip()]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, runtime: IngestRuntime) -> None:
        self.runtime = runtime

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        origin = f"syslog-udp:{addr[0]}"
        try:
            self.runtime.accept(_records(data.split(b"\n"), origin), "syslog-udp")
        except OverloadedError:
            self.runtime.dropped.inc(source="syslog-udp")


def _split_lines(buffer: bytes, max_frame: int) -> tuple[list[bytes], bytes]:
    *frames, rest = buffer.split(b"\n")
    if len(rest) > max_frame:
        raise ParseError(f"syslog line longer than {max_frame} bytes")
    return frames, rest


async def _handle_tcp(runtime: IngestRuntime, max_frame: int, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername") or ("?",)
    origin = f"syslog-tcp:{peer[0]}"
    buffer = b""
    octets: bool | None = None
    try:
        while chunk := await reader.read(READ_SIZE):
            buffer += chunk
            if octets is None:
                octets = is_octet_counted(buffer)
            splitter = split_octet_counted if octets else _split_lines
            frames, buffer = splitter(buffer, max_frame)
            if frames:
                await _durable(runtime, _records(frames, origin))
        if buffer.strip() and not octets:
            await _durable(runtime, _records([buffer], origin))
    except ParseError as exc:
        log.warning("closing syslog connection from %s: %s", peer[0], exc)
        runtime.rejected.inc(source=origin)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _durable(runtime: IngestRuntime, records: list[SpoolRecord]) -> None:
    """Append and wait for fsync; while the spool is full, wait (the sender is slowed)."""
    while True:
        try:
            await asyncio.wrap_future(runtime.accept(records, "syslog-tcp"))
            return
        except OverloadedError:
            await asyncio.sleep(0.05)


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key) if key else None)
    return context


async def start_syslog(runtime: IngestRuntime, host: str, port: int, *, udp: bool = True,
                       tcp: bool = True, max_frame: int = 1 << 20, tls_cert: Path | None = None,
                       tls_key: Path | None = None) -> list[object]:
    """Start the listeners; returns the servers/transports to close on shutdown."""
    loop = asyncio.get_running_loop()
    handles: list[object] = []
    if tcp:
        server = await asyncio.start_server(
            lambda r, w: _handle_tcp(runtime, max_frame, r, w), host, port,
            ssl=_tls_context(tls_cert, tls_key), limit=max_frame * 2)
        handles.append(server)
        port = port or server.sockets[0].getsockname()[1]
    if udp:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(runtime),
                                                           local_addr=(host, port))
        handles.append(transport)
    log.info("syslog listening on %s:%s (udp=%s tcp=%s tls=%s)", host, port, udp, tcp,
             tls_cert is not None)
    return handles
