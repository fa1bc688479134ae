"""Configuration: defaults < vigil.toml in the data folder < VIGIL_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vigil.core.config import CONFIG_FILE_NAME, DEFAULT_DATA_DIR, Settings, load_settings
from vigil.core.errors import ConfigError, VigilError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VIGIL_* variable from the caller's shell may leak into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("VIGIL_"):
            monkeypatch.delenv(name)


def write_config(data_dir: Path, text: str) -> Path:
    path = data_dir / CONFIG_FILE_NAME
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ------------------------------------------------------------------------------


def test_defaults_without_a_file(data_dir: Path) -> None:
    settings = load_settings(data_dir)
    assert settings.data_dir == data_dir
    assert settings.state_url is None
    assert settings.log_level == "INFO"
    assert settings.log_format == "text"
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.ingest.syslog_port == 5514
    assert settings.ingest.syslog_enabled is True
    assert settings.ingest.batch_size == 20_000
    assert settings.store.retention_days == 365
    assert settings.store.retention == {}
    assert settings.events_path == data_dir / "events.duckdb"
    assert settings.spool_dir == data_dir / "spool"


def test_data_dir_from_environment_when_not_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings().data_dir == tmp_path / "elsewhere"


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().data_dir == DEFAULT_DATA_DIR


def test_explicit_data_dir_wins_over_environment(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "elsewhere"))
    assert load_settings(data_dir).data_dir == data_dir


def test_empty_file_gives_defaults(data_dir: Path) -> None:
    write_config(data_dir, "")
    assert load_settings(data_dir) == load_settings(data_dir.parent / "no-such-folder").model_copy(
        update={"data_dir": data_dir})


# -- the file ------------------------------------------------------------------------------


def test_file_in_data_dir_overrides_defaults(data_dir: Path) -> None:
    write_config(data_dir, """
log_level = "DEBUG"
log_format = "json"

[server]
port = 9090

[ingest]
syslog_port = 6514
batch_size = 500

[store]
retention_days = 30
retention = { "windows" = 90, "linux/-/sshd" = 7 }
""")
    settings = load_settings(data_dir)
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "json"
    assert settings.server.port == 9090
    assert settings.server.host == "127.0.0.1"  # untouched keys keep their default
    assert settings.ingest.syslog_port == 6514
    assert settings.ingest.batch_size == 500
    assert settings.store.retention_days == 30
    assert settings.store.retention == {"windows": 90, "linux/-/sshd": 7}


def test_file_of_another_folder_is_not_read(data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    write_config(other, "log_level = 'DEBUG'\n")
    assert load_settings(data_dir).log_level == "INFO"


def test_folder_named_like_the_file_is_ignored(data_dir: Path) -> None:
    (data_dir / CONFIG_FILE_NAME).mkdir()
    assert load_settings(data_dir).log_level == "INFO"


def test_keyword_overrides(data_dir: Path) -> None:
    write_config(data_dir, "log_level = 'DEBUG'\n")
    assert load_settings(data_dir, log_level="ERROR").log_level == "ERROR"


# -- the environment -----------------------------------------------------------------------


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, """
log_level = "DEBUG"
[ingest]
syslog_port = 6514
batch_size = 500
""")
    monkeypatch.setenv("VIGIL_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("VIGIL_INGEST__SYSLOG_PORT", "7514")
    settings = load_settings(data_dir)
    assert settings.log_level == "WARNING"
    assert settings.ingest.syslog_port == 7514
    assert settings.ingest.batch_size == 500  # from the file, not overridden


def test_nested_environment_without_file(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("VIGIL_SERVER__PORT", "8181")
    monkeypatch.setenv("VIGIL_STORE__RETENTION_DAYS", "14")
    monkeypatch.setenv("VIGIL_INGEST__SYSLOG_UDP", "false")
    settings = load_settings(data_dir)
    assert settings.server.port == 8181
    assert settings.store.retention_days == 14
    assert settings.ingest.syslog_udp is False


def test_environment_dict_merges_with_the_file(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, '[store]\nretention = { "windows" = 90 }\n')
    monkeypatch.setenv("VIGIL_STORE__RETENTION", '{"linux": 7}')
    assert load_settings(data_dir).store.retention == {"windows": 90, "linux": 7}


def test_environment_wins_over_keyword_overrides(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("VIGIL_LOG_LEVEL", "WARNING")
    assert load_settings(data_dir, log_level="ERROR").log_level == "WARNING"


# -- errors --------------------------------------------------------------------------------


def test_invalid_toml_is_a_config_error(data_dir: Path) -> None:
    path = write_config(data_dir, "log_level = \n[ingest\n")
    with pytest.raises(ConfigError) as info:
        load_settings(data_dir)
    message = str(info.value)
    assert str(path) in message
    assert "invalid TOML" in message
    assert isinstance(info.value, VigilError)


def test_file_that_is_not_utf8_is_a_config_error(data_dir: Path) -> None:
    (data_dir / CONFIG_FILE_NAME).write_bytes(b"log_level = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(data_dir)


@pytest.mark.parametrize(("text", "where"), [
    ("log_format = 'xml'\n", "log_format"),
    ("log_level = 3\n", "log_level"),
    ("[ingest]\nsyslog_port = 70000\n", "ingest.syslog_port"),
    ("[ingest]\nsyslog_port = 'five'\n", "ingest.syslog_port"),
    ("[ingest]\nbatch_size = 0\n", "ingest.batch_size"),
    ("[store]\nretention_days = 0\n", "store.retention_days"),
    ("[store]\nretention = { windows = 'long' }\n", "store.retention.windows"),
    ("[server]\nport = -1\n", "server.port"),
    ("no_such_setting = 1\n", "no_such_setting"),
])
def test_invalid_value_in_file_names_the_setting(data_dir: Path, text: str, where: str) -> None:
    write_config(data_dir, text)
    with pytest.raises(ConfigError) as info:
        load_settings(data_dir)
    message = str(info.value)
    assert message.startswith(f"invalid setting {where}: ")
    assert "\n" not in message


@pytest.mark.parametrize(("name", "value", "where"), [
    ("VIGIL_INGEST__SYSLOG_PORT", "not-a-port", "ingest.syslog_port"),
    ("VIGIL_SERVER__PORT", "65536", "server.port"),
    ("VIGIL_LOG_FORMAT", "yaml", "log_format"),
    ("VIGIL_STORE__THREADS", "0", "store.threads"),
])
def test_invalid_value_in_environment_names_the_setting(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path, name: str, value: str,
        where: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^invalid setting {where}: "):
        load_settings(data_dir)


@pytest.mark.parametrize("text", ["[ingest]\nsyslog_prot = 6514\n", "[store]\nretention_day = 3\n",
                                  "[server]\nhots = 'x'\n"])
def test_unknown_key_in_a_section_is_an_error(data_dir: Path, text: str) -> None:
    write_config(data_dir, text)
    key = text.splitlines()[1].split(" = ")[0]
    with pytest.raises(ConfigError, match=rf"^invalid setting \w+\.{key}: "):
        load_settings(data_dir)


def test_unknown_nested_environment_variable_is_an_error(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("VIGIL_INGEST__SYSLOG_PROT", "6514")
    with pytest.raises(ConfigError, match=r"ingest\.syslog_prot"):
        load_settings(data_dir)


def test_malformed_json_in_environment_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("VIGIL_STORE__RETENTION", "{not json")
    with pytest.raises(ConfigError, match="VIGIL_"):
        load_settings(data_dir)


# -- the state database URL ----------------------------------------------------------------


def test_resolved_state_url_defaults_to_sqlite_in_data_dir(data_dir: Path) -> None:
    url = load_settings(data_dir).resolved_state_url
    assert url == f"sqlite:///{(data_dir / 'state.db').resolve()}"


def test_resolved_state_url_is_absolute_for_a_relative_data_dir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    url = load_settings(Path("rel-data")).resolved_state_url
    assert url == f"sqlite:///{tmp_path.resolve() / 'rel-data' / 'state.db'}"


def test_resolved_state_url_from_file(data_dir: Path) -> None:
    write_config(data_dir, "state_url = 'postgresql+psycopg://vigil@db.example/vigil'\n")
    assert load_settings(data_dir).resolved_state_url == \
        "postgresql+psycopg://vigil@db.example/vigil"


def test_resolved_state_url_from_environment(
        monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    write_config(data_dir, "state_url = 'sqlite:////from/file.db'\n")
    monkeypatch.setenv("VIGIL_STATE_URL", "postgresql+psycopg://u@h/envdb")
    assert load_settings(data_dir).resolved_state_url == "postgresql+psycopg://u@h/envdb"


def test_empty_state_url_means_the_default(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.setenv("VIGIL_STATE_URL", "")
    assert load_settings(data_dir).resolved_state_url.startswith("sqlite:///")


def test_settings_are_a_pydantic_model(data_dir: Path) -> None:
    settings = load_settings(data_dir)
    assert isinstance(settings, Settings)
    dumped = settings.model_dump(mode="json")
    assert dumped["ingest"]["syslog_port"] == 5514
    assert dumped["data_dir"] == str(data_dir)
