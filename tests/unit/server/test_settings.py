"""Settings come from defaults, a TOML file, STRONGROOM_* variables and options, in that order."""

from __future__ import annotations

import os
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


def test_workers_default_to_one_per_core_the_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRONGROOM_WORKERS", raising=False)  # the tests' own server default
    assert load_settings().workers == len(os.sched_getaffinity(0))


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


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("STRONGROOM_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, True) for v in ("true", "1", "yes", "on", "TRUE", "On")]
    + [(v, False) for v in ("false", "0", "no", "off", "False", "NO")],
)
def test_boolean_spellings(clean_env: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    clean_env.setenv("STRONGROOM_DEV", value)
    assert load_settings().dev is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", "y", "enabled"])
def test_other_boolean_values_are_refused(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("STRONGROOM_DEV", value)
    with pytest.raises(ValueError, match=r"setting 'dev' \(STRONGROOM_DEV\): .* not a boolean"):
        load_settings()


def test_bad_value_names_setting_source_and_rule(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("STRONGROOM_PORT", "abc")
    with pytest.raises(ValueError) as info:
        load_settings()
    assert str(info.value) == "setting 'port' (STRONGROOM_PORT): 'abc' is not a whole number"


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("port", [0, 4599, 65535], [-1, 65536, 99999]),
        ("workers", [1, 64], [0, -3, 65]),
        ("on_demand_rotation_limit", [0, 25], [-1]),
        ("grants_per_key", [1], [0]),
        ("grants_per_grantee_per_key", [1], [0]),
        ("change_poll_seconds", [0.01, 2], [0, -1]),
        ("database_timeout_seconds", [0.5, 30], [0, -1]),
        ("job_interval_seconds", [1], [0]),
        ("usage_flush_seconds", [0.1, 3600], [0, -1]),
    ],
)
def test_ranges_hold_for_every_source(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str, good: list[float], bad: list[float]
) -> None:
    config = tmp_path / "s.toml"
    for value in good:
        assert getattr(load_settings(**{name: value}), name) == value
    for value in bad:
        with pytest.raises(ValueError, match=f"setting '{name}' \\(--"):
            load_settings(**{name: str(value)})
        config.write_text(f"{name} = {value}\n")
        with pytest.raises(ValueError, match=f"setting '{name}' \\(config file {config}\\)"):
            load_settings(config)
        clean_env.setenv(f"STRONGROOM_{name.upper()}", str(value))
        with pytest.raises(ValueError, match=f"setting '{name}' \\(STRONGROOM_{name.upper()}\\)"):
            load_settings()
        clean_env.delenv(f"STRONGROOM_{name.upper()}")


@pytest.mark.parametrize("account", ["123", "1111222233334", "11112222333a", "١١١١٢٢٢٢٣٣٣٣"])
def test_account_must_be_12_ascii_digits(clean_env: pytest.MonkeyPatch, account: str) -> None:
    with pytest.raises(ValueError, match=r"'account' \(--account\).*12 digits"):
        load_settings(account=account)
    clean_env.setenv("STRONGROOM_ACCOUNT", account)
    with pytest.raises(ValueError, match=r"'account' \(STRONGROOM_ACCOUNT\)"):
        load_settings()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("port = 1.5\n", "1.5 is not a whole number"),
        ("port = true\n", "true is not a whole number"),
        ("dev = 2\n", "2 is not a boolean"),
        ("host = 1\n", "1 is not text"),
        ("change_poll_seconds = nan\n", "nan is not a finite number"),
        ('log_level = "loud"\n', "'loud' is not a log level"),
        ('log_format = "xml"\n', "'xml' is not a log format: use one of text, json"),
        ("strict_consistency = 2\n", "2 is not a boolean"),
    ],
)
def test_toml_values_of_the_wrong_kind_are_refused(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, toml: str, message: str
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(toml)
    with pytest.raises(ValueError, match=f"\\(config file {config}\\): {message}"):
        load_settings(config)


def test_config_file_problems_are_one_line(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope.toml \(--config\): cannot read it: No such file"):
        load_settings(tmp_path / "nope.toml")
    clean_env.setenv("STRONGROOM_CONFIG", str(tmp_path))
    with pytest.raises(ValueError, match=r"\(STRONGROOM_CONFIG\): cannot read it: Is a directory"):
        load_settings()
    bad = tmp_path / "bad.toml"
    bad.write_text("[unclosed\n")
    with pytest.raises(ValueError, match=r"bad.toml \(--config\): not valid TOML: .*line 1"):
        load_settings(bad)


# -- the root key ---------------------------------------------------------------------------


def test_root_key_settings_from_toml_environment_and_options(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "s.toml"
    config.write_text(
        'root-key = "pkcs11"\npkcs11-module = "/opt/hsm/lib.so"\n'
        'pkcs11-token-label = "prod"\npkcs11-pin-env = "HSM_PIN"\n'
    )
    s = load_settings(config)
    assert (s.root_key, s.pkcs11_module, s.pkcs11_token_label, s.pkcs11_key_label) == (
        "pkcs11",
        Path("/opt/hsm/lib.so"),
        "prod",
        "strongroom-root",
    )
    assert s.pkcs11_pin_env == "HSM_PIN" and s.pkcs11_pin_file is None
    clean_env.setenv("STRONGROOM_PKCS11_KEY_LABEL", "root-2")
    assert load_settings(config, pkcs11_token_label="other").pkcs11_key_label == "root-2"
    assert load_settings(config, pkcs11_token_label="other").pkcs11_token_label == "other"
    assert load_settings(root_key="softhsm").root_key == "softhsm"
    assert load_settings().root_key == "file"


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"root_key": "hsm"}, "setting 'root_key' (--root-key): 'hsm' is not a root key provider"),
        (
            {"root_key": "pkcs11", "pkcs11_token_label": "t", "pkcs11_pin_env": "P"},
            "setting 'pkcs11_module' is not given",
        ),
        (
            {"root_key": "pkcs11", "pkcs11_module": "/m.so", "pkcs11_pin_env": "P"},
            "setting 'pkcs11_token_label' is not given",
        ),
        (
            {"root_key": "pkcs11", "pkcs11_module": "/m.so", "pkcs11_token_label": "t"},
            "give exactly one of the settings 'pkcs11_pin_env'",
        ),
        (
            {
                "root_key": "pkcs11",
                "pkcs11_module": "/m.so",
                "pkcs11_token_label": "t",
                "pkcs11_pin_env": "P",
                "pkcs11_pin_file": "/pin",
            },
            "give exactly one of the settings 'pkcs11_pin_env'",
        ),
        ({"pkcs11_pin_env": "12 34"}, "is not an environment variable name"),
        ({"pkcs11_token_label": "x" * 33}, "is not a PKCS#11 label: 1 to 32 bytes"),
    ],
)
def test_root_key_settings_are_checked(
    clean_env: pytest.MonkeyPatch, overrides: dict[str, str], said: str
) -> None:
    with pytest.raises(ValueError) as raised:
        load_settings(**overrides)
    assert said in str(raised.value)


def test_a_pin_is_never_a_setting(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('pkcs11_pin = "1234"\n')
    with pytest.raises(ValueError, match="a PIN is never a setting") as raised:
        load_settings(config)
    assert "1234" not in str(raised.value)


def test_xks_ca_bundle_must_be_a_readable_pem_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ValueError) as info:
        load_settings(xks_ca_bundle=missing)
    assert str(info.value).startswith(f"setting 'xks_ca_bundle' (--xks-ca-bundle): {missing}")
    assert "cannot be read" in str(info.value) and "\n" not in str(info.value)
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    monkeypatch.setenv("STRONGROOM_XKS_CA_BUNDLE", str(empty))
    with pytest.raises(ValueError, match=r"STRONGROOM_XKS_CA_BUNDLE.*holds no PEM certificate"):
        load_settings()
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("STRONGROOM_XKS_CA_BUNDLE", str(bundle))
    assert load_settings().xks_ca_bundle == bundle
