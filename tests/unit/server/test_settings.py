"""Settings come from defaults, a TOML file, STRONGROOM_* variables and options, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.server.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "DEV", "CONFIG", "DATA_DIR", "ACCOUNT"):
        monkeypatch.delenv(f"STRONGROOM_{name}", raising=False)
    s = load_settings()
    assert (s.host, s.port, s.dev, s.account) == ("127.0.0.1", 4599, False, "111122223333")
    assert s.db_url.startswith("sqlite:///") and s.db_url.endswith("strongroom.db")


def test_priority_file_then_env_then_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "s.toml"
    config.write_text('port = 1000\naccount = "444455556666"\ndev = true\nworkers = 3\n')
    monkeypatch.setenv("STRONGROOM_PORT", "2000")
    s = load_settings(config, port=None, workers=2)
    assert (s.port, s.account, s.dev, s.workers) == (2000, "444455556666", True, 2)
    assert load_settings(config, port=3000).port == 3000


def test_unknown_setting_in_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(config)


def test_bad_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_PORT", "eighty")
    with pytest.raises(ValueError, match="eighty"):
        load_settings()


def test_round_trip_through_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        port=1234, dev=True, data_dir=Path("/tmp/x"), database_url="postgresql://h/db"
    )
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original


def test_grant_quotas_default_to_aws_and_reach_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.server.wiring import build_core, prepare

    for name in ("GRANTS_PER_KEY", "GRANTS_PER_GRANTEE_PER_KEY"):
        monkeypatch.delenv(f"STRONGROOM_{name}", raising=False)
    assert (Settings().grants_per_key, Settings().grants_per_grantee_per_key) == (50_000, 500)
    monkeypatch.setenv("STRONGROOM_GRANTS_PER_KEY", "3")
    settings = load_settings(data_dir=tmp_path, grants_per_grantee_per_key=2)
    prepare(settings)
    core = build_core(settings)
    try:
        assert (core.grants_per_key, core.grants_per_grantee_per_key) == (3, 2)
    finally:
        core.store.close()


def test_seed_file_from_toml_environment_or_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRONGROOM_SEED", raising=False)
    config = tmp_path / "s.toml"
    config.write_text('seed = "from-toml.yaml"\n')
    assert load_settings().seed is None
    assert load_settings(config).seed == Path("from-toml.yaml")
    monkeypatch.setenv("STRONGROOM_SEED", "/etc/strongroom/seed.yaml")
    assert load_settings(config).seed == Path("/etc/strongroom/seed.yaml")
    assert load_settings(config, seed=Path("cli.yaml")).seed == Path("cli.yaml")
