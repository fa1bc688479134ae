"""The ``vigil`` command, run as a real process on a temporary data folder."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer

from helpers import Run, assert_user_error, ok, run_vigil
from vigil.cli.main import app
from vigil.core.db import StateDB, current_revision, make_engine
from vigil.core.errors import AuthError
from vigil.core.timeutil import utcnow
from vigil.events import all_formats
from vigil.people import tokens
from vigil.people.tokens import Scope
from vigil.store.duck import EventStore
from vigil.store.search import SearchRequest, count, search

SUMMARY = re.compile(r"(\d[\d,]*) inputs, (\d[\d,]*) records in .*: (\d[\d,]*) stored, "
                     r"(\d[\d,]*) duplicates skipped, (\d[\d,]*) rejected")


def vigil(data_dir: Path | None, *args: str, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Run:
    return run_vigil(data_dir, *args, env=env, cwd=cwd)


def summary_counts(text: str) -> tuple[int, int, int, int, int]:
    match = SUMMARY.search(text)
    assert match, text
    inputs, records, stored, duplicates, rejected = (int(g.replace(",", ""))
                                                     for g in match.groups())
    return inputs, records, stored, duplicates, rejected


def windows_line(minutes_ago: int, event_id: int, channel: str, host: str,
                 **fields: str) -> str:
    stamp = (utcnow() - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return json.dumps({"@timestamp": stamp, "EventID": event_id, "Channel": channel,
                       "Hostname": host, **fields})


SYSMON = "Microsoft-Windows-Sysmon/Operational"
GARBAGE = "this is garbage, not {json"


def write_events(folder: Path) -> Path:
    lines = [
        windows_line(60, 1, SYSMON, "WKS-1", Image=r"C:\Windows\System32\cmd.exe",
                     CommandLine="cmd /c whoami"),
        windows_line(120, 1, SYSMON, "WKS-2",
                     Image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                     CommandLine="powershell -nop -w hidden"),
        windows_line(3 * 24 * 60, 4625, "Security", "DC-1", TargetUserName="admin"),
        GARBAGE,
    ]
    path = folder / "windows-events.json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- --help everywhere ---------------------------------------------------------------------


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    subcommands: dict[str, object] = getattr(command, "commands", None) or {}
    for name, sub in sorted(subcommands.items()):
        paths += _command_paths(sub, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(typer.main.get_command(app))


def test_every_command_is_listed() -> None:
    names = {" ".join(p) for p in COMMAND_PATHS}
    assert {"", "config", "config show", "db", "db upgrade", "db status", "formats", "ingest",
            "search", "store", "store sources", "store export", "store retention", "tokens",
            "tokens create", "tokens list", "tokens revoke", "serve", "demo"} <= names


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Run]:
    cwd = tmp_path_factory.mktemp("help")
    argv = [(*p, "--help") for p in COMMAND_PATHS] + [("search", "-h"), ("--version",)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(lambda args: vigil(None, *args, cwd=cwd), argv)
        return {args[:-1] if args[-1] == "--help" else args: run
                for args, run in zip(argv, runs, strict=True)}


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "vigil")
def test_help(helps: dict[tuple[str, ...], Run], path: tuple[str, ...],
              tmp_path_factory: pytest.TempPathFactory) -> None:
    run = ok(helps[path])
    assert "Usage:" in run.out
    assert run.err == ""
    if path:
        assert path[-1] in run.out
    # --help never creates a data folder.
    assert not (tmp_path_factory.getbasetemp() / "help0" / "vigil-data").exists()


def test_short_help_and_version(helps: dict[tuple[str, ...], Run]) -> None:
    assert "Usage:" in ok(helps[("search", "-h")]).out
    assert re.fullmatch(r"vigil \S+\n", ok(helps[("--version",)]).out)


# -- config and formats --------------------------------------------------------------------


def test_config_show_defaults(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run = ok(vigil(data_dir, "config", "show"))
    assert 'log_level = "INFO"' in run.out
    assert "[ingest]" in run.out
    assert "syslog_port = 5514" in run.out
    assert "[store]" in run.out
    assert "retention_days = 365" in run.out
    assert f'state_url = "sqlite:///{(data_dir / "state.db").resolve()}"' in run.out


def test_config_show_file_and_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "vigil.toml").write_text(
        'log_level = "DEBUG"\n[ingest]\nsyslog_port = 6514\nbatch_size = 77\n'
        '[store]\nretention = { windows = 30 }\n', encoding="utf-8")
    env = {"VIGIL_INGEST__SYSLOG_PORT": "7514", "VIGIL_STATE_URL": "sqlite:////tmp/elsewhere.db"}
    data = json.loads(ok(vigil(data_dir, "config", "show", "--json", env=env)).out)
    assert data["ingest"]["syslog_port"] == 7514
    assert data["ingest"]["batch_size"] == 77
    assert data["log_level"] == "DEBUG"
    assert data["store"]["retention"] == {"windows": 30}
    assert data["state_url"] == "sqlite:////tmp/elsewhere.db"
    assert data["data_dir"] == str(data_dir)


def test_formats(tmp_path: Path) -> None:
    names = {f.name for f in all_formats()}
    assert names
    rows = [json.loads(line) for line in
            ok(vigil(tmp_path / "d", "formats", "-o", "json")).out.splitlines()]
    assert {r["format"] for r in rows} == names
    assert all(r["framing"] and r["description"] for r in rows)


def test_db_upgrade_and_status(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    assert "revision: none" in ok(vigil(data_dir, "db", "status")).out
    revision = re.search(r"revision (\S+)", ok(vigil(data_dir, "db", "upgrade")).out)
    assert revision
    engine = make_engine(f"sqlite:///{data_dir / 'state.db'}")
    try:
        assert current_revision(engine) == revision.group(1)
    finally:
        engine.dispose()


# -- ingest and search ---------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    data_dir: Path
    first: Run
    second: Run


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    folder = tmp_path_factory.mktemp("ingested")
    events = write_events(folder)
    data_dir = folder / "vigil-data"
    first = vigil(data_dir, "ingest", str(events), "-q")
    second = vigil(data_dir, "ingest", str(events), "-q")
    return Ingested(data_dir, first, second)


def test_ingest_summary_adds_up(ingested: Ingested) -> None:
    run = ok(ingested.first)
    inputs, records, stored, duplicates, rejected = summary_counts(run.out)
    assert (inputs, records, stored, duplicates, rejected) == (1, 4, 3, 0, 1)
    assert records == stored + duplicates + rejected
    assert "windows/process_creation/sysmon" in run.out
    assert "windows/-/security" in run.out
    assert "--show-rejected" in run.out


def test_ingest_again_stores_only_duplicates(ingested: Ingested) -> None:
    run = ok(ingested.second)
    inputs, records, stored, duplicates, rejected = summary_counts(run.out)
    assert (inputs, stored, duplicates) == (1, 0, 3)
    assert records == stored + duplicates + rejected


def test_show_rejected_lists_the_garbage_line(ingested: Ingested) -> None:
    run = ok(vigil(ingested.data_dir, "ingest", "--show-rejected"))
    assert "windows-events.json" in run.out
    assert GARBAGE[:20] in run.out
    assert "dead letters (2 in all)" in run.out  # one per ingestion of the file
    assert "JSON" in run.out


def test_search_table(ingested: Ingested) -> None:
    run = ok(vigil(ingested.data_dir, "search", "*"))
    lines = run.out.splitlines()
    for host in ("WKS-1", "WKS-2", "DC-1"):
        assert host in run.out
    # Newest first.
    assert [h for line in lines for h in ("WKS-1", "WKS-2", "DC-1") if h in line] == \
        ["WKS-1", "WKS-2", "DC-1"]


def test_search_json(ingested: Ingested) -> None:
    run = ok(vigil(ingested.data_dir, "search", r"Image=*\cmd.exe", "-o", "json", "--raw"))
    (hit,) = [json.loads(line) for line in run.out.splitlines()]
    assert hit["host"] == "WKS-1"
    assert hit["source"] == "windows/process_creation/sysmon"
    assert hit["fields"]["CommandLine"] == "cmd /c whoami"
    assert hit["fields"]["EventID"] == "1"
    assert "cmd /c whoami" in hit["raw"]
    assert re.fullmatch(r"[0-9a-f]{32}", hit["id"])


def test_search_csv(ingested: Ingested) -> None:
    run = ok(vigil(ingested.data_dir, "search", "EventID=1", "-o", "csv"))
    rows = list(csv.reader(io.StringIO(run.out)))
    assert rows[0] == ["time (UTC)", "host", "source", "fields"]
    assert sorted(r[1] for r in rows[1:]) == ["WKS-1", "WKS-2"]
    assert all(r[2] == "windows/process_creation/sysmon" for r in rows[1:])


@pytest.mark.parametrize(("args", "expected"), [
    (("TargetUserName=ADMIN OR powershell", "-n", "1"), 2),
    (("*", "--since", "24h", "--source", "windows"), 2),
    (("NOT EventID=1", "--until", "1d", "--source", "windows/-/security", "--source", "linux"),
     1),
])
def test_search_count(ingested: Ingested, args: tuple[str, ...], expected: int) -> None:
    run = ok(vigil(ingested.data_dir, "search", *args, "--count"))
    assert run.out.strip() == str(expected)


def test_search_sql(ingested: Ingested) -> None:
    sql = ('SELECT "@host" AS host, count(*) AS n FROM ev_windows__process_creation__sysmon '
           "GROUP BY 1 ORDER BY 1")
    run = ok(vigil(ingested.data_dir, "search", "--sql", sql, "-o", "json"))
    assert [json.loads(line) for line in run.out.splitlines()] == [
        {"host": "WKS-1", "n": 1}, {"host": "WKS-2", "n": 1}]


def test_store_sources(ingested: Ingested) -> None:
    table = ok(vigil(ingested.data_dir, "store", "sources")).out
    rows = {cells[0]: cells[1] for line in table.splitlines()
            if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 2}
    assert rows == {"windows/process_creation/sysmon": "2",
                    "windows/-/security": "1"}


def test_store_export_parquet(ingested: Ingested, tmp_path: Path) -> None:
    target = tmp_path / "parquet"
    run = ok(vigil(ingested.data_dir, "store", "export", "--parquet", str(target)))
    assert "3 events written" in run.out
    files = list(target.rglob("*.parquet"))
    assert files
    assert sum(pq.read_metadata(f).num_rows for f in files) == 3
    assert pq.read_table(target / "windows__process_creation__sysmon").num_rows == 2


# -- store retention -----------------------------------------------------------------------


def test_store_retention(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "vigil.toml").write_text(
        "[store]\nretention_days = 30\nretention = { \"windows/-/security\" = 400 }\n",
        encoding="utf-8")
    events = tmp_path / "old-and-new.json"
    events.write_text("\n".join([
        windows_line(60, 1, SYSMON, "NEW", Image="new.exe"),
        windows_line(60 * 24 * 100, 1, SYSMON, "OLD", Image="old.exe"),
        windows_line(60 * 24 * 100, 4625, "Security", "OLD-DC", TargetUserName="x"),
    ]) + "\n", encoding="utf-8")
    ok(vigil(data_dir, "ingest", str(events), "-q"))
    run = ok(vigil(data_dir, "store", "retention"))
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in run.out.splitlines() if line.count("│") >= 5}
    assert rows["windows/process_creation/sysmon"][0] == "30"
    assert rows["windows/process_creation/sysmon"][2] == "1"
    assert rows["windows/-/security"][0] == "400"
    assert rows["windows/-/security"][2] == "0"
    remaining = EventStore(data_dir / "events.duckdb")
    try:
        assert sorted(h.host or "" for h in search(remaining, SearchRequest("*"))) == \
            ["NEW", "OLD-DC"]
    finally:
        remaining.close()


# -- tokens --------------------------------------------------------------------------------


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = ok(vigil(data_dir, "tokens", "create", "web-frontends", "--scope", "ingest"))
    token = created.out.strip().splitlines()[-1]
    assert token.startswith("vgt_")
    read = ok(vigil(data_dir, "tokens", "create", "soc-dashboard", "--scope", "read"))
    read_token = read.out.strip().splitlines()[-1]

    listed = ok(vigil(data_dir, "tokens", "list")).out
    assert "web-frontends" in listed
    assert "soc-dashboard" in listed
    assert token not in listed
    assert token[4:20] not in listed
    assert read_token not in listed

    db = StateDB(f"sqlite:///{data_dir / 'state.db'}")
    try:
        assert tokens.verify(db, f"Bearer {token}", Scope.INGEST) == "web-frontends"
        assert tokens.verify(db, f"Bearer {read_token}", Scope.READ) == "soc-dashboard"
        token_id = next(t.id for t in tokens.listing(db) if t.name == "web-frontends")
        assert f"token {token_id} revoked" in ok(
            vigil(data_dir, "tokens", "revoke", str(token_id))).out
        with pytest.raises(AuthError):
            tokens.verify(db, f"Bearer {token}", Scope.INGEST)
        assert tokens.verify(db, f"Bearer {read_token}", Scope.READ) == "soc-dashboard"
        assert {t.name: t.revoked_at is not None for t in tokens.listing(db)} == {
            "web-frontends": True, "soc-dashboard": False}
    finally:
        db.dispose()


# -- demo ----------------------------------------------------------------------------------


def test_demo_no_serve_stores_events(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run = ok(vigil(data_dir, "demo", "--no-serve"))
    match = re.search(r"demo data: ([\d,]+) events stored", run.out)
    assert match
    stored = int(match.group(1).replace(",", ""))
    assert stored > 0
    assert "vgt_" in run.out
    store = EventStore(data_dir / "events.duckdb")
    try:
        assert store.total() == stored
        assert count(store, SearchRequest("203.0.113.50")) > 0
        assert len(store.counts()) >= 3  # Windows, Linux and web server sources
    finally:
        store.close()


# -- user mistakes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    args: tuple[str, ...]
    fragments: tuple[str, ...] = ()
    toml: str | None = None
    env: tuple[tuple[str, str], ...] = ()


MISTAKES: dict[str, Mistake] = {
    "missing path": Mistake(("ingest", "no-such-file.json"), ("no-such-file.json",)),
    "empty query": Mistake(("search", ""), ("empty query",)),
    "unbalanced parens": Mistake(("search", "(EventID=1 OR EventID=2"),),
    "dangling operator": Mistake(("search", "EventID=1 AND", "--count"),),
    "not a number": Mistake(("search", 'EventID>"٣"', "--count"), ("compare with a number",)),
    "bad --since": Mistake(("search", "*", "--since", "yesterday"), ("--since",)),
    "unknown output": Mistake(("search", "*", "-o", "xml"), ("--output",)),
    "deeply nested query": Mistake(("search", "(" * 400 + "a" + ")" * 400), ("nests",)),
    "DROP via --sql": Mistake(("search", "--sql", "DROP TABLE _partitions"), ("DROP",)),
    "invalid SQL": Mistake(("search", "--sql", "SELEKT 1"), ("invalid SQL", "SELEKT")),
    "invalid vigil.toml": Mistake(("config", "show"), ("vigil.toml", "invalid TOML"),
                                  toml="[ingest\nsyslog_port = 1\n"),
    "invalid VIGIL_ variable": Mistake(("ingest", "--show-rejected"), ("server.port",),
                                       env=(("VIGIL_SERVER__PORT", "eighty"),)),
    "unknown token": Mistake(("tokens", "revoke", "999"), ("999",)),
    "bad state url": Mistake(("tokens", "list"), ("state database",),
                             env=(("VIGIL_STATE_URL", "nosuchdb://x"),)),
    "unknown --format": Mistake(("ingest", "EVENTS", "--format", "no-such-format"),
                                ("no-such-format",)),
    "huge --since": Mistake(("search", "*", "--since", "99999999999999999"), ("--since",)),
}
@pytest.fixture(scope="module")
def mistakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every mistake runs in its own data folder, all at once (they are independent)."""
    base = tmp_path_factory.mktemp("mistakes")
    events = write_events(base)
    cases = MISTAKES

    def run(item: tuple[int, tuple[str, Mistake]]) -> tuple[str, Run]:
        index, (name, case) = item
        data_dir = base / f"case{index}"
        data_dir.mkdir()
        if case.toml is not None:
            (data_dir / "vigil.toml").write_text(case.toml, encoding="utf-8")
        args = [str(events) if a == "EVENTS" else a for a in case.args]
        return name, vigil(data_dir, *args, env=dict(case.env), cwd=base)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, enumerate(cases.items())))


@pytest.mark.parametrize("name", list(MISTAKES))
def test_user_mistake(mistakes: dict[str, Run], name: str) -> None:
    assert_user_error(mistakes[name], *MISTAKES[name].fragments)


def test_store_busy_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    holder = EventStore(data_dir / "events.duckdb")
    try:
        run = vigil(data_dir, "search", "*", "--count")
        assert_user_error(run, "in use by another Vigil process")
    finally:
        holder.close()


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    run = vigil(tmp_path / "d", "store", "export")  # --parquet is required
    assert run.code == 2
    assert "--parquet" in run.err
    assert "Traceback" not in run.err
