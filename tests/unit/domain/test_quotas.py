"""The quota catalog: every KMS operation counts against a request quota of AWS's name,
cryptographic operations by their key's class, and the values an operator may give."""

from __future__ import annotations

import pytest

from strongroom.domain import quotas as q
from strongroom.domain.enums import DataKeyPairSpec, KeySpec, SpecFamily
from strongroom.handlers.registry import HANDLERS

pytestmark = pytest.mark.unit


def test_every_kms_operation_counts_against_a_request_quota() -> None:
    for operation in HANDLERS:
        spec = "RSA_2048" if operation.startswith("GenerateDataKeyPair") else None
        quotas = q.request_quotas_of(operation, None, spec)
        assert len(quotas) == 1, operation
        assert quotas[0].kind is q.QuotaKind.REQUEST
        assert quotas[0].name.endswith("request rate"), quotas[0].name


@pytest.mark.parametrize(
    ("spec", "quota"),
    [
        (KeySpec.SYMMETRIC_DEFAULT, q.SYMMETRIC),
        (KeySpec.HMAC_256, q.SYMMETRIC),
        (KeySpec.RSA_4096, q.RSA),
        (KeySpec.ECC_NIST_P256, q.ECC),
        (KeySpec.SM2, q.ECC),
        (KeySpec.ML_DSA_65, q.ML_DSA),
        (KeySpec.ML_KEM_768, q.ML_KEM),
    ],
)
def test_cryptographic_operations_count_against_their_keys_class(
    spec: KeySpec, quota: q.Quota
) -> None:
    assert q.request_quotas_of("Decrypt", spec.family) == (quota,)
    # Without a key (GenerateRandom) or a key not known yet: symmetric.
    assert q.request_quotas_of("GenerateRandom", None) == (q.SYMMETRIC,)


def test_every_spec_family_has_a_cryptographic_quota() -> None:
    assert set(q.CRYPTO_CLASS) == set(SpecFamily)


def test_data_key_pairs_count_per_key_pair_spec() -> None:
    assert set(q.KEY_PAIR) == set(DataKeyPairSpec)
    rsa = q.request_quotas_of("GenerateDataKeyPairWithoutPlaintext", None, "RSA_4096")
    assert rsa == (q.ALL["GenerateDataKeyPair (RSA_4096) request rate"],)
    assert rsa[0].default == 0.1
    assert q.request_quotas_of("GenerateDataKeyPair", None, None) == ()


def test_control_plane_operations_have_their_own_rates() -> None:
    assert q.OPERATION["CreateKey"].default == 5
    assert q.OPERATION["DescribeKey"].default == 2_000
    assert q.OPERATION["GetParametersForImport"].default == 0.25
    assert q.request_quotas_of("CreateAlias", None) == (q.ALL["CreateAlias request rate"],)
    assert q.request_quotas_of("AssumeRole", None) == ()  # STS: no KMS quota


def test_the_symmetric_rate_depends_on_the_region() -> None:
    assert q.SYMMETRIC.default_in("eu-north-1") == 10_000
    assert q.SYMMETRIC.default_in("eu-west-2") == 20_000
    assert q.SYMMETRIC.default_in("us-east-1") == 100_000


def test_resource_quotas_and_which_are_adjustable() -> None:
    adjustable = {r.name: r.adjustable for r in q.RESOURCE_QUOTAS}
    assert adjustable == {
        "AWS KMS keys": True,
        "Aliases per KMS key": True,
        "Grants per KMS key": True,
        "Key policy document size": False,
        "Custom key stores": True,
        "On-demand rotation": False,
        "Tags per KMS key": True,
    }
    assert q.KMS_KEYS.default == 100_000
    assert q.KEY_POLICY_SIZE.default == 32_768
    assert not q.CLOUDHSM_KEY_STORE.adjustable


@pytest.mark.parametrize(
    ("quota", "value", "said"),
    [
        (q.SYMMETRIC, 0, "out of range"),
        (q.SYMMETRIC, -3, "out of range"),
        (q.SYMMETRIC, 2e9, "out of range"),
        (q.KMS_KEYS, 1.5, "not a whole number"),
    ],
)
def test_values_out_of_range_are_refused(quota: q.Quota, value: float, said: str) -> None:
    with pytest.raises(ValueError, match=said) as info:
        q.check_value(quota, value)
    assert quota.name in str(info.value)


def test_fractional_rates_are_allowed() -> None:
    q.check_value(q.OPERATION["GetParametersForImport"], 0.25)
