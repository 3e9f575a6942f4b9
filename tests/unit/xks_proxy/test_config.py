"""The XKS proxy's TOML configuration: what it accepts and the errors that name the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from strongroom.xks_proxy.config import load, parse

SECRET = "S" * 44
GOOD: dict[str, Any] = {
    "region": "us-east-1",
    "token": {"module": "/usr/lib/softhsm/libsofthsm2.so", "label": "xks", "pin": "1234"},
    "uri_prefixes": [
        {
            "prefix": "/a/b",
            "credentials": [
                {"access_key_id": "A" * 20, "secret_access_key": SECRET},
                {"access_key_id": "B" * 30, "secret_access_key_env": "XKS_UNIT_SECRET"},
            ],
        }
    ],
    "keys": {"foo": ["ENCRYPT", "DECRYPT"], "none": []},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    target: Any = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return data


def test_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XKS_UNIT_SECRET", "T" * 43)
    config = parse(GOOD)
    assert config.region == "us-east-1" and config.token.pin == "1234"
    assert [c.secret_access_key for c in config.prefixes["/a/b"]] == [SECRET, "T" * 43]
    assert config.keys == {"foo": ["ENCRYPT", "DECRYPT"], "none": []}
    assert not config.create_missing_keys and config.request_log is None
    assert parse(_with("options", {"disabled_keys": ["foo"]})).disabled_keys == ("foo",)
    assert "1234" not in repr(config.token)


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("region", KeyError, "region must be"),
        ("token", KeyError, "token must be a table"),
        ("token.pin", KeyError, "exactly one of pin"),
        ("token.pin_env", "XKS_UNIT_NOT_SET", "exactly one of pin"),
        ("uri_prefixes", [], "uri_prefixes must be"),
        ("uri_prefixes.0.prefix", "no-slash", "prefix must be"),
        ("uri_prefixes.0.credentials", [], "credentials must be"),
        ("uri_prefixes.0.credentials.0.access_key_id", "short", "20 to 30"),
        ("uri_prefixes.0.credentials.0.secret_access_key", "tooshort", "43 to 64"),
        ("uri_prefixes.0.credentials.1.access_key_id", "A" * 20, "given twice"),
        ("keys.bad key", ["ENCRYPT"], "a key id is"),
        ("keys.foo", ["SIGN"], "ENCRYPT and DECRYPT"),
        ("options", {"create_missing_keys": "yes"}, "true or false"),
        ("options", {"disabled_keys": ["not-listed"]}, "listed in"),
    ],
)
def test_errors_name_the_field(
    monkeypatch: pytest.MonkeyPatch, path: str, value: Any, says: str
) -> None:
    monkeypatch.setenv("XKS_UNIT_SECRET", "T" * 43)
    with pytest.raises(ValueError, match=says) as caught:
        parse(_with(path, value))
    assert SECRET not in str(caught.value) and "1234" not in str(caught.value)


def test_unset_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XKS_UNIT_SECRET", raising=False)
    with pytest.raises(ValueError, match="XKS_UNIT_SECRET is not set"):
        parse(GOOD)


def test_secret_file_and_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XKS_UNIT_SECRET", "T" * 43)
    (tmp_path / "pin").write_text("9876\n")
    (tmp_path / "xks.toml").write_text(
        'region = "r"\n[token]\nmodule = "/m.so"\nlabel = "l"\n'
        f'pin_file = "{tmp_path / "pin"}"\n'
        f'[[uri_prefixes]]\n[[uri_prefixes.credentials]]\naccess_key_id = "{"C" * 25}"\n'
        f'secret_access_key = "{SECRET}"\n[keys]\n'
    )
    config = load(tmp_path / "xks.toml")
    assert config.token.pin == "9876" and list(config.prefixes) == [""]
    (tmp_path / "bad.toml").write_text("region = ")
    with pytest.raises(ValueError, match="not valid TOML"):
        load(tmp_path / "bad.toml")


def test_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XKS_UNIT_SECRET", "T" * 43)
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    tls = {"cert_file": str(tmp_path / "c.pem"), "key_file": str(tmp_path / "k.pem")}
    config = parse(_with("tls", tls))
    assert config.tls is not None and config.tls.client_ca_file is None
    with pytest.raises(ValueError, match=r"tls\.client_ca_file: .* does not exist"):
        parse(_with("tls", {**tls, "client_ca_file": str(tmp_path / "none.pem")}))
    with pytest.raises(ValueError, match=r"tls\.key_file must be"):
        parse(_with("tls", {"cert_file": tls["cert_file"]}))
