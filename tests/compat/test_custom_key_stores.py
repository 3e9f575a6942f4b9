"""Custom key stores of type AWS_CLOUDHSM on real SoftHSM2 tokens, driven with boto3 and the
AWS CLI against a real server: clusters registered with ``strongroom admin hsm-cluster``
(``add --softhsm`` run as its own process: SoftHSM2 reads its configuration once per
process), every operation and error, pagination, the quota, and the password kept secret."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import (
    POSTGRES_ENV,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    aws_cli,
    run_strongroom,
    start_server,
    stop_server,
)
from strongroom.crypto.trust_anchor import self_signed_trust_anchor
from strongroom.keystores import softhsm

from ._support import (
    ALL_KMS,
    assert_kms_error,
    describe_store,
    new_principal,
    store_state_is,
    stored_files,
)

pytestmark = [
    pytest.mark.compat,
    pytest.mark.hsm,
    pytest.mark.skipif(
        not any(p.is_file() for p in softhsm.MODULE_PATHS), reason="SoftHSM2 is not installed"
    ),
]


def _start(tmp: Path, backend: str) -> tuple[Server, str | None]:
    url = name = None
    if backend == "postgres":
        base = os.environ.get(POSTGRES_ENV)
        if not base:
            pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
        url, name = _fresh_postgres_database(base)
    return start_server(tmp / "data", url), name


def _stop(server: Server, name: str | None) -> None:
    stop_server(server)
    if name is not None:
        _drop_postgres_database(os.environ[POSTGRES_ENV], name)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module on each backend; each test makes its own clusters and stores."""
    server, name = _start(tmp_path_factory.mktemp("cks"), request.param)
    yield server
    _stop(server, name)


@pytest.fixture(scope="module")
def kms(srv: Server) -> Any:
    return srv.client()


def softhsm_cluster(server: Server) -> dict[str, str]:
    """``hsm-cluster add --softhsm`` as its own process: {"ClusterId", "TrustAnchorCertificate"
    (a path), "KeyStorePassword", "pem"}."""
    done = run_strongroom(["admin", "hsm-cluster", "add", "--softhsm", *server.storage_args()])
    out: dict[str, str] = json.loads(done.stdout)
    assert set(out) == {"ClusterId", "TrustAnchorCertificate", "KeyStorePassword"}
    out["pem"] = Path(out["TrustAnchorCertificate"]).read_text()
    return out


def register_cluster(
    server: Server,
    tmp_path: Path,
    *,
    pem: str | None = None,
    hsm_count: int = 2,
    module: str | None = None,
    label: str = "no-such-token",
) -> tuple[str, str]:
    """A cluster registered in the server's data directory (no token made): (id, PEM)."""
    cluster_id = "cluster-" + uuid.uuid4().hex[:12].translate(str.maketrans("0189", "abcd"))
    pem = pem or self_signed_trust_anchor("test anchor", datetime.now(UTC))
    path = tmp_path / f"{cluster_id}.pem"
    path.write_text(pem)
    server.admin(
        "hsm-cluster",
        "add",
        cluster_id,
        "--module",
        module or str(softhsm.module_path()),
        "--token-label",
        label,
        "--trust-anchor",
        str(path),
        "--hsm-count",
        str(hsm_count),
    )
    return cluster_id, pem


def _name(prefix: str = "store") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(kms: Any, cluster: dict[str, str], name: str | None = None, **extra: Any) -> str:
    params = {
        "CustomKeyStoreName": name or _name(),
        "CloudHsmClusterId": cluster["ClusterId"],
        "TrustAnchorCertificate": cluster["pem"],
        "KeyStorePassword": cluster["KeyStorePassword"],
    }
    params.update(extra)
    return kms.create_custom_key_store(**params)["CustomKeyStoreId"]  # type: ignore[no-any-return]


def _create_fails(code: str, kms: Any, cluster: dict[str, str], name: str | None = None) -> None:
    assert_kms_error(code, lambda: _create(kms, cluster, name))


# -- the lifecycle ------------------------------------------------------------------------


def test_create_describe_connect_disconnect_delete(srv: Server, kms: Any) -> None:
    cluster = softhsm_cluster(srv)
    name = _name()
    store_id = _create(kms, cluster, name)
    assert store_id.startswith("cks-") and len(store_id) == 21
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreName"] == name
    assert entry["CloudHsmClusterId"] == cluster["ClusterId"]
    assert entry["TrustAnchorCertificate"] == cluster["pem"]
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert "ConnectionErrorCode" not in entry
    assert isinstance(entry["CreationDate"], datetime)
    by_name = kms.describe_custom_key_stores(CustomKeyStoreName=name)["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in by_name] == [store_id]

    assert kms.connect_custom_key_store(CustomKeyStoreId=store_id)["ResponseMetadata"]
    store_state_is(kms, store_id, "CONNECTED")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # connected already: fine
    store_state_is(kms, store_id, "CONNECTED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "DISCONNECTED")
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.disconnect_custom_key_store,
        CustomKeyStoreId=store_id,
    )
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    for call, params in (
        (kms.describe_custom_key_stores, {"CustomKeyStoreId": store_id}),
        (kms.describe_custom_key_stores, {"CustomKeyStoreName": name}),
        (kms.connect_custom_key_store, {"CustomKeyStoreId": store_id}),
        (kms.disconnect_custom_key_store, {"CustomKeyStoreId": store_id}),
        (kms.update_custom_key_store, {"CustomKeyStoreId": store_id, "NewCustomKeyStoreName": "x"}),
        (kms.delete_custom_key_store, {"CustomKeyStoreId": store_id}),
    ):
        assert_kms_error("CustomKeyStoreNotFoundException", call, **params)


def test_connect_with_wrong_password_fails_with_invalid_credentials(srv: Server, kms: Any) -> None:
    cluster = softhsm_cluster(srv)
    store_id = _create(kms, cluster, KeyStorePassword="wrong-password")
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = store_state_is(kms, store_id, "FAILED")
    assert entry["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
    # A FAILED store must be disconnected before it connects again.
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.connect_custom_key_store,
        CustomKeyStoreId=store_id,
    )
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        KeyStorePassword=cluster["KeyStorePassword"],
    )
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    entry = store_state_is(kms, store_id, "DISCONNECTED")
    assert "ConnectionErrorCode" not in entry
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id, KeyStorePassword=cluster["KeyStorePassword"]
    )
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


def test_connect_to_an_unloadable_module_fails_with_network_errors(
    srv: Server, kms: Any, tmp_path: Path
) -> None:
    cluster_id, pem = register_cluster(srv, tmp_path, module=str(tmp_path / "no-such-module.so"))
    cluster = {"ClusterId": cluster_id, "pem": pem, "KeyStorePassword": "password-1"}
    store_id = _create(kms, cluster)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state_is(kms, store_id, "FAILED")["ConnectionErrorCode"] == "NETWORK_ERRORS"


def test_token_gone_fails_with_cluster_not_found_and_connects_when_back(tmp_path: Path) -> None:
    server, db = _start(tmp_path, "sqlite")
    try:
        kms = server.client()
        cluster = softhsm_cluster(server)
        store_id = _create(kms, cluster)
        tokens = server.data_dir / "softhsm" / "tokens"
        away = tmp_path / "away"
        shutil.move(tokens, away)
        tokens.mkdir()
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        assert store_state_is(kms, store_id, "FAILED")["ConnectionErrorCode"] == "CLUSTER_NOT_FOUND"
        tokens.rmdir()
        shutil.move(away, tokens)
        time.sleep(0.3)  # a module looks for tokens anew at most every 0.25 s
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
        store_state_is(kms, store_id, "CONNECTED")
    finally:
        _stop(server, db)


# -- CreateCustomKeyStore's errors ----------------------------------------------------------


def test_create_errors(srv: Server, kms: Any, tmp_path: Path) -> None:
    cluster = softhsm_cluster(srv)
    other_pem = self_signed_trust_anchor("another anchor", datetime.now(UTC))
    missing = {**cluster, "ClusterId": "cluster-aaaaaaaaaaa"}
    _create_fails("CloudHsmClusterNotFoundException", kms, missing)
    _create_fails("IncorrectTrustAnchorException", kms, {**cluster, "pem": other_pem})
    _create_fails("IncorrectTrustAnchorException", kms, {**cluster, "pem": "nonsense"})
    one_hsm, one_pem = register_cluster(srv, tmp_path, hsm_count=1)
    _create_fails(
        "CloudHsmClusterInvalidConfigurationException",
        kms,
        {"ClusterId": one_hsm, "pem": one_pem, "KeyStorePassword": "password-1"},
    )
    no_hsm, no_pem = register_cluster(srv, tmp_path, hsm_count=0)
    _create_fails(
        "CloudHsmClusterNotActiveException",
        kms,
        {"ClusterId": no_hsm, "pem": no_pem, "KeyStorePassword": "password-1"},
    )
    name = _name()
    _create(kms, cluster, name)
    again = softhsm_cluster(srv)
    _create_fails("CustomKeyStoreNameInUseException", kms, again, name)
    _create_fails("CloudHsmClusterInUseException", kms, cluster)
    # A cluster of the same backup history (the same trust anchor) is in use too.
    related, _ = register_cluster(srv, tmp_path, pem=cluster["pem"])
    _create_fails("CloudHsmClusterInUseException", kms, {**cluster, "ClusterId": related})
    # An external key store needs its proxy's members (test_external_key_stores.py).
    assert_kms_error(
        "ValidationException",
        kms.create_custom_key_store,
        message="XksProxyUriEndpoint is required for a custom key store of type "
        "EXTERNAL_KEY_STORE.",
        CustomKeyStoreName=_name(),
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
    )
    assert_kms_error(
        "ValidationException",
        kms.create_custom_key_store,
        CustomKeyStoreName=_name(),
        CloudHsmClusterId=again["ClusterId"],
        TrustAnchorCertificate=again["pem"],
    )


def test_quota_of_ten_custom_key_stores_per_account_and_region(srv: Server, tmp_path: Path) -> None:
    kms = srv.client(region="ap-south-1")
    for _ in range(10):
        cluster_id, pem = register_cluster(srv, tmp_path)
        _create(kms, {"ClusterId": cluster_id, "pem": pem, "KeyStorePassword": "password-1"})
    cluster_id, pem = register_cluster(srv, tmp_path)
    _create_fails(
        "LimitExceededException",
        kms,
        {"ClusterId": cluster_id, "pem": pem, "KeyStorePassword": "password-1"},
    )
    # Another Region has its own quota.
    other = srv.client(region="ap-south-2")
    _create(other, {"ClusterId": cluster_id, "pem": pem, "KeyStorePassword": "password-1"})


# -- DescribeCustomKeyStores ----------------------------------------------------------------


def test_describe_pages_in_creation_order(srv: Server, tmp_path: Path) -> None:
    kms = srv.client(region="eu-west-2")
    made = []
    for _ in range(3):
        cluster_id, pem = register_cluster(srv, tmp_path)
        made.append(
            _create(kms, {"ClusterId": cluster_id, "pem": pem, "KeyStorePassword": "password-1"})
        )
    first = kms.describe_custom_key_stores(Limit=2)
    assert first["Truncated"] is True
    second = kms.describe_custom_key_stores(Limit=2, Marker=first["NextMarker"])
    assert second["Truncated"] is False and "NextMarker" not in second
    seen = [s["CustomKeyStoreId"] for s in first["CustomKeyStores"] + second["CustomKeyStores"]]
    assert seen == made
    everything = kms.describe_custom_key_stores()
    assert [s["CustomKeyStoreId"] for s in everything["CustomKeyStores"]] == made
    assert_kms_error("InvalidMarkerException", kms.describe_custom_key_stores, Marker="bogus")
    assert_kms_error(
        "ValidationException",
        kms.describe_custom_key_stores,
        CustomKeyStoreId=made[0],
        CustomKeyStoreName="x",
    )
    # Stores of another Region are not there.
    assert_kms_error(
        "CustomKeyStoreNotFoundException",
        srv.client(region="eu-west-3").describe_custom_key_stores,
        CustomKeyStoreId=made[0],
    )


# -- UpdateCustomKeyStore -------------------------------------------------------------------


def test_update_rules(srv: Server, kms: Any, tmp_path: Path) -> None:
    cluster = softhsm_cluster(srv)
    store_id = _create(kms, cluster)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    # While connected only the name may change.
    renamed = _name("renamed")
    kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName=renamed)
    assert describe_store(kms, store_id)["CustomKeyStoreName"] == renamed
    related, _ = register_cluster(srv, tmp_path, pem=cluster["pem"], label=cluster["ClusterId"])
    for params in ({"KeyStorePassword": "another-1"}, {"CloudHsmClusterId": related}):
        assert_kms_error(
            "CustomKeyStoreInvalidStateException",
            kms.update_custom_key_store,
            CustomKeyStoreId=store_id,
            **params,
        )
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "DISCONNECTED")
    unrelated, _ = register_cluster(srv, tmp_path)
    assert_kms_error(
        "CloudHsmClusterNotRelatedException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        CloudHsmClusterId=unrelated,
    )
    assert_kms_error(
        "CloudHsmClusterNotFoundException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        CloudHsmClusterId="cluster-bbbbbbbbbbb",
    )
    other_name = _name()
    _create(kms, softhsm_cluster(srv), other_name)
    assert_kms_error(
        "CustomKeyStoreNameInUseException",
        kms.update_custom_key_store,
        CustomKeyStoreId=store_id,
        NewCustomKeyStoreName=other_name,
    )
    # A related cluster (same trust anchor; here the same token) replaces the cluster.
    kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=related)
    assert describe_store(kms, store_id)["CloudHsmClusterId"] == related
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


# -- DeleteCustomKeyStore and hsm-cluster remove --------------------------------------------


def _set_key_store(server: Server, key_arn: str, store_id: str | None) -> None:
    """Put a key into a store the way the data plane will (``keys.custom_key_store_id``)."""
    url = server.database_url or f"sqlite:///{server.data_dir / 'strongroom.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE keys SET custom_key_store_id = :s WHERE arn = :a"),
                {"s": store_id, "a": key_arn},
            )
    finally:
        engine.dispose()


def test_delete_rules_and_cluster_removal(srv: Server, kms: Any) -> None:
    cluster = softhsm_cluster(srv)
    store_id = _create(kms, cluster)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    assert_kms_error(
        "CustomKeyStoreInvalidStateException",
        kms.delete_custom_key_store,
        CustomKeyStoreId=store_id,
    )
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    key = kms.create_key()["KeyMetadata"]
    _set_key_store(srv, key["Arn"], store_id)
    assert_kms_error(
        "CustomKeyStoreHasCMKsException", kms.delete_custom_key_store, CustomKeyStoreId=store_id
    )
    listed = json.loads(srv.admin("hsm-cluster", "list").stdout)["Clusters"]
    assert cluster["ClusterId"] in [c["ClusterId"] for c in listed]
    refused = run_strongroom(
        ["admin", "hsm-cluster", "remove", cluster["ClusterId"], *srv.storage_args()],
        check=False,
    )
    assert refused.returncode != 0 and store_id in refused.stderr
    _set_key_store(srv, key["Arn"], None)
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    srv.admin("hsm-cluster", "remove", cluster["ClusterId"])
    listed = json.loads(srv.admin("hsm-cluster", "list").stdout)["Clusters"]
    assert cluster["ClusterId"] not in [c["ClusterId"] for c in listed]


def test_hsm_cluster_add_checks_its_arguments(srv: Server, tmp_path: Path) -> None:
    pem = tmp_path / "anchor.pem"
    pem.write_text(self_signed_trust_anchor("x", datetime.now(UTC)))
    common = ["--module", "/x.so", "--token-label", "t", "--trust-anchor", str(pem)]
    bad_id = run_strongroom(
        ["admin", "hsm-cluster", "add", "cluster-1", *common, *srv.storage_args()], check=False
    )
    assert bad_id.returncode != 0 and "cluster-[2-7a-zA-Z]{11,16}" in bad_id.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    bad_pem = run_strongroom(
        [
            "admin",
            "hsm-cluster",
            "add",
            "cluster-abcdefghijk",
            "--module",
            "/x.so",
            "--token-label",
            "t",
            "--trust-anchor",
            str(not_pem),
            *srv.storage_args(),
        ],
        check=False,
    )
    assert bad_pem.returncode != 0 and "not a PEM X.509 certificate" in bad_pem.stderr


# -- authorization and accounts ------------------------------------------------------------


def test_operations_need_their_iam_permission_and_stay_in_their_account(
    srv: Server, kms: Any, tmp_path: Path
) -> None:
    cluster = softhsm_cluster(srv)
    store_id = _create(kms, cluster)
    reader = new_principal(
        srv,
        "cks-reader",
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "kms:DescribeCustomKeyStores", "Resource": "*"}
            ],
        },
    )["client"]
    assert describe_store(reader, store_id)["CustomKeyStoreId"] == store_id
    for call, params in (
        (reader.connect_custom_key_store, {"CustomKeyStoreId": store_id}),
        (reader.disconnect_custom_key_store, {"CustomKeyStoreId": store_id}),
        (reader.delete_custom_key_store, {"CustomKeyStoreId": store_id}),
        (
            reader.update_custom_key_store,
            {"CustomKeyStoreId": store_id, "NewCustomKeyStoreName": "x"},
        ),
    ):
        assert_kms_error("AccessDeniedException", call, **params)
    assert_kms_error("AccessDeniedException", lambda: _create(reader, softhsm_cluster(srv)))
    # Another account sees neither the store nor the cluster.
    srv.admin("create-account", "444455556666")
    other = new_principal(srv, "cks-other", account="444455556666", policy=ALL_KMS)["client"]
    assert_kms_error(
        "CustomKeyStoreNotFoundException",
        other.describe_custom_key_stores,
        CustomKeyStoreId=store_id,
    )
    assert other.describe_custom_key_stores()["CustomKeyStores"] == []
    unused = softhsm_cluster(srv)
    _create_fails("CloudHsmClusterNotFoundException", other, unused)


# -- the password stays secret --------------------------------------------------------------


def test_password_is_not_in_the_audit_trail_logs_or_database(srv: Server, kms: Any) -> None:
    cluster = softhsm_cluster(srv)
    password = cluster["KeyStorePassword"]
    store_id = _create(kms, cluster)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword=password)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    store_state_is(kms, store_id, "CONNECTED")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    secret = password.encode()
    checked = 0
    audit_seen = False
    files = {**stored_files(srv.data_dir), srv.log_path: srv.log_path.read_bytes()}
    for path, data in files.items():
        if not path.name.endswith(".crt"):
            assert secret not in data, path
            audit_seen = audit_seen or (
                b"CreateCustomKeyStore" in data and b"keyStorePassword" not in data
            )
            checked += 1
    assert checked and audit_seen  # the audit trail recorded the request, without the password
    url = srv.database_url or f"sqlite:///{srv.data_dir / 'strongroom.db'}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            wrapped = conn.execute(
                sa.text("SELECT wrapped_password FROM custom_key_stores WHERE store_id = :s"),
                {"s": store_id},
            ).scalar_one()
            dump = "\n".join(
                repr(row)
                for table in ("custom_key_stores", "hsm_clusters")
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            )
    finally:
        engine.dispose()
    assert secret not in bytes(wrapped) and password not in dump


# -- the AWS CLI ----------------------------------------------------------------------------


def test_aws_cli_describes_custom_key_stores(srv: Server, kms: Any) -> None:
    cluster = softhsm_cluster(srv)
    name = _name("cli")
    store_id = _create(kms, cluster, name)
    done = aws_cli(srv, "describe-custom-key-stores", "--custom-key-store-id", store_id)
    entry = json.loads(done.stdout)["CustomKeyStores"][0]
    assert entry["CustomKeyStoreName"] == name
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["CloudHsmClusterId"] == cluster["ClusterId"]


# -- the seam of the data plane: connected_token in another process ------------------------

_SEAM_SCRIPT = """
import json, sys
from pathlib import Path
import boto3
from botocore.config import Config
from strongroom.domain.errors import KMSInvalidStateException
from strongroom.server.settings import load_settings
from strongroom.server.wiring import build_core
from strongroom.services.store_tokens import connected_token, run_in_store

args = json.loads(sys.argv[1])
settings = load_settings(
    None, data_dir=Path(args["data_dir"]), database_url=args["db"], account=None
)
core = build_core(settings)
kms = boto3.client("kms", endpoint_url=args["endpoint"], region_name="us-east-1",
                   aws_access_key_id=args["key"], aws_secret_access_key=args["secret"],
                   config=Config(retries={"max_attempts": 0}))
store, arn = args["store"], "arn:aws:kms:us-east-1:111122223333:key/k"
seq = core.store.latest_change()

def poll():
    global seq
    seq, names = core.store.changes_since(seq)
    for name in names:
        core.store_tokens.invalidate(name)

def state():
    try:
        n = run_in_store(core, store, lambda s: len(list(s.get_objects())), key_arn=arn)
        return f"ok {n}"
    except KMSInvalidStateException as e:
        return f"unavailable: {e.message}"

print("disconnected:", state())
kms.connect_custom_key_store(CustomKeyStoreId=store)
poll()
print("connected:", state())
kms.disconnect_custom_key_store(CustomKeyStoreId=store)
print("before poll:", state())
poll()
print("after poll:", state())
kms.connect_custom_key_store(CustomKeyStoreId=store)
poll()
print("again:", state())
try:
    connected_token(core, "cks-00000000000000000")
except KMSInvalidStateException as e:
    print("missing:", e.message)
"""


def test_connected_token_follows_the_state_through_the_change_feed(srv: Server, kms: Any) -> None:
    import subprocess
    import sys

    cluster = softhsm_cluster(srv)
    store_id = _create(kms, cluster)
    args = {
        "data_dir": str(srv.data_dir),
        "db": srv.database_url,
        "endpoint": srv.endpoint,
        "key": srv.access_key_id,
        "secret": srv.secret_access_key,
        "store": store_id,
    }
    done = subprocess.run(
        [sys.executable, "-c", _SEAM_SCRIPT, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    unavailable = "unavailable: arn:aws:kms:us-east-1:111122223333:key/k is unavailable."
    assert lines["disconnected"] == unavailable
    assert lines["connected"].startswith("ok ")
    # Until the process polls the change feed it keeps its token (bounded by the poll).
    assert lines["before poll"].startswith("ok ")
    assert lines["after poll"] == unavailable
    assert lines["again"].startswith("ok ")
    assert lines["missing"] == "Custom key store cks-00000000000000000 is not connected."
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
