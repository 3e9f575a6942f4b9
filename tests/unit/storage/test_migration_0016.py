"""Migration 0016 (Parameter Store): its tables up and down, and the admin user's policy,
which gains ssm:* (and loses it on the way down), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .test_migration_0012 import _exec, _to, engine  # noqa: F401  (the fixture)

pytestmark = pytest.mark.unit

_OLD = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
)
_NEW = (
    '{"Version": "2012-10-17", "Statement": '
    '[{"Effect": "Allow", "Action": ["kms:*", "ssm:*"], "Resource": "*"}]}'
)
_OWN = '{"Version": "2012-10-17", "Statement": []}'


def _policies(db: sa.Engine) -> dict[str, str]:
    rows = _exec(db, "SELECT principal_arn, document FROM identity_policies")
    return {str(r[0]): str(r[1]) for r in rows}


def test_migration_0016_adds_the_tables_and_gives_the_admin_ssm(engine: sa.Engine) -> None:  # noqa: F811
    _to(engine, "0015")
    _exec(engine, "INSERT INTO accounts VALUES ('111122223333', 1.0)")
    for name in ("admin", "other"):
        _exec(
            engine,
            "INSERT INTO principals (arn, account_id, kind, name, created) VALUES "
            f"('arn:aws:iam::111122223333:user/{name}', '111122223333', 'user', '{name}', 1.0)",
        )
    insert = (
        "INSERT INTO identity_policies (principal_arn, policy_name, document, created) "
        "VALUES (:arn, :name, :doc, 1.0)"
    )
    _exec(
        engine,
        insert,
        arn="arn:aws:iam::111122223333:user/admin",
        name="strongroom-admin",
        doc=_OLD,
    )
    _exec(engine, insert, arn="arn:aws:iam::111122223333:user/other", name="mine", doc=_OWN)
    _to(engine, "0016")
    assert _policies(engine) == {
        "arn:aws:iam::111122223333:user/admin": _NEW,
        "arn:aws:iam::111122223333:user/other": _OWN,
    }
    tables = set(sa.inspect(engine).get_table_names())
    assert {"ssm_parameters", "ssm_parameter_versions", "ssm_parameter_tags"} <= tables
    _to(engine, "0015", down=True)
    assert _policies(engine)["arn:aws:iam::111122223333:user/admin"] == _OLD
    assert "ssm_parameters" not in set(sa.inspect(engine).get_table_names())
