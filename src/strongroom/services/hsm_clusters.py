"""HSM clusters: PKCS#11 tokens an operator registers for an account, which custom key
stores of type AWS_CLOUDHSM then use (``strongroom admin hsm-cluster``)."""

from __future__ import annotations

from strongroom.crypto.trust_anchor import certificate_der
from strongroom.domain.errors import (
    AlreadyExistsException,
    CloudHsmClusterInUseException,
    CloudHsmClusterNotFoundException,
    ValidationException,
)
from strongroom.domain.ids import CLUSTER_ID_RE
from strongroom.domain.models import HsmCluster
from strongroom.services.core import Core

MAX_TOKEN_LABEL = 32  # bytes: CK_TOKEN_INFO.label


def add_cluster(
    core: Core,
    account: str,
    cluster_id: str,
    *,
    module_path: str,
    token_label: str,
    trust_anchor: str,
    hsm_count: int,
    softhsm: bool = False,
) -> HsmCluster:
    """Register a token as the cluster ``cluster_id`` of ``account``. Raises
    ValidationException (an id not of AWS's ``cluster-`` form, a label longer than 32
    bytes, a negative HSM count, a trust anchor that is no PEM certificate) and
    AlreadyExistsException."""
    if not CLUSTER_ID_RE.fullmatch(cluster_id):
        raise ValidationException(
            f"cluster id {cluster_id!r} is not of the form cluster-[2-7a-zA-Z]{{11,16}}, "
            "e.g. cluster-jxyuvk2hj2e"
        )
    if not token_label or len(token_label.encode()) > MAX_TOKEN_LABEL:
        raise ValidationException(
            f"token label {token_label!r} must have 1 to {MAX_TOKEN_LABEL} bytes"
        )
    if hsm_count < 0:
        raise ValidationException(f"HSM count {hsm_count} must be 0 or more")
    if certificate_der(trust_anchor) is None:
        raise ValidationException("the trust anchor is not a PEM X.509 certificate")
    cluster = HsmCluster(
        cluster_id=cluster_id,
        account=account,
        module_path=module_path,
        token_label=token_label,
        trust_anchor=trust_anchor,
        hsm_count=hsm_count,
        softhsm=softhsm,
        created=core.clock(),
    )
    with core.store.transaction() as tx:
        if tx.hsm_clusters.get(cluster_id) is not None:
            raise AlreadyExistsException(f"cluster {cluster_id} is registered already")
        tx.hsm_clusters.insert(cluster)
    return cluster


def list_clusters(core: Core, account: str | None) -> list[HsmCluster]:
    """The clusters of ``account`` (of every account for None), by cluster id."""
    with core.store.transaction() as tx:
        return tx.hsm_clusters.list(account)


def remove_cluster(core: Core, account: str, cluster_id: str) -> HsmCluster:
    """Forget a cluster of ``account`` (its token is left as it is). Raises
    CloudHsmClusterNotFoundException and, while a custom key store uses it,
    CloudHsmClusterInUseException."""
    with core.store.transaction() as tx:
        cluster = tx.hsm_clusters.get(cluster_id)
        if cluster is None or cluster.account != account:
            raise CloudHsmClusterNotFoundException(
                f"cluster {cluster_id} is not registered in account {account}"
            )
        users = tx.custom_key_stores.using_cluster(cluster_id)
        if users:
            raise CloudHsmClusterInUseException(
                f"cluster {cluster_id} is used by custom key store "
                + ", ".join(s.store_id for s in users)
                + ": delete the store (DeleteCustomKeyStore) or move it to a related "
                "cluster (UpdateCustomKeyStore) first"
            )
        tx.hsm_clusters.delete(cluster_id)
    return cluster
