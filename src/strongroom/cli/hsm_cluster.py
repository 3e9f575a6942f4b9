"""``strongroom admin hsm-cluster``: register PKCS#11 tokens as the CloudHSM clusters of an
account, list them and remove them; ``add --softhsm`` makes one in the data directory's
own SoftHSM2, so custom key stores can be tried on one machine."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strongroom.services.core import Core

Runner = Callable[["Core", argparse.Namespace], Any]
SOFTHSM_HSM_COUNT = 2
"""HSMs a SoftHSM2 cluster is registered with: the fewest a custom key store accepts."""


def register(sub: Any, with_core: Callable[[argparse.Namespace, Runner], int]) -> None:
    """Add ``hsm-cluster add|list|remove`` to the admin subcommands ``sub``."""
    from strongroom.cli.common import add_storage_options

    top = sub.add_parser(
        "hsm-cluster",
        help="manage the PKCS#11 tokens that custom key stores use as CloudHSM clusters",
        description="Register PKCS#11 tokens as the CloudHSM clusters of an account: "
        "CreateCustomKeyStore names one by its cluster id.",
    )
    actions = top.add_subparsers(dest="hsm_cluster_command", required=True, metavar="ACTION")

    def action(
        name: str,
        help_text: str,
        run: Runner,
        check: Callable[[argparse.Namespace], None] | None = None,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=help_text, description=help_text)
        add_storage_options(p)
        p.add_argument(
            "--in-account", dest="in_account", help="the cluster's account (default: --account)"
        )

        def start(args: argparse.Namespace) -> int:
            if check is not None:  # before the data directory is opened (or made)
                check(args)
            return with_core(args, run)

        p.set_defaults(run=start)
        return p

    p = action(
        "add",
        "register a PKCS#11 token as a cluster, or (--softhsm) make a SoftHSM2 token under "
        "DATA_DIR and register it: then prints ClusterId, the path of its "
        "TrustAnchorCertificate and the KeyStorePassword (the kmsuser PIN) once",
        _add,
        _check_add,
    )
    p.add_argument(
        "cluster_id",
        nargs="?",
        metavar="CLUSTER_ID",
        help="AWS's form cluster-[2-7a-zA-Z]{11,16}, e.g. cluster-jxyuvk2hj2e (made up with "
        "--softhsm)",
    )
    p.add_argument("--module", type=Path, help="path of the PKCS#11 module (.so)")
    p.add_argument("--token-label", help="label of the token in that module")
    p.add_argument(
        "--trust-anchor",
        metavar="CERT.pem",
        type=Path,
        help="the cluster's trust anchor certificate (PEM); CreateCustomKeyStore must give it",
    )
    p.add_argument(
        "--hsm-count",
        type=int,
        default=SOFTHSM_HSM_COUNT,
        metavar="N",
        help="how many HSMs the cluster has (default 2; a store needs 2, connecting 1; "
        "0 is a cluster that is not active)",
    )
    p.add_argument(
        "--softhsm",
        action="store_true",
        help="make a new SoftHSM2 token under DATA_DIR/softhsm and a self-signed trust "
        "anchor under DATA_DIR/hsm-clusters, and register them with 2 HSMs",
    )
    action("list", "list the registered clusters (of --in-account when given)", _list)
    p = action(
        "remove",
        "forget a cluster (its token stays); refused while a custom key store uses it",
        _remove,
    )
    p.add_argument("cluster_id", metavar="CLUSTER_ID")


def _account(args: argparse.Namespace) -> str:
    from strongroom.cli.admin import _account as account_of

    return account_of(args)


def _entry(cluster: Any) -> dict[str, Any]:
    return {
        "ClusterId": cluster.cluster_id,
        "AccountId": cluster.account,
        "Module": cluster.module_path,
        "TokenLabel": cluster.token_label,
        "HsmCount": cluster.hsm_count,
        "SoftHsm": cluster.softhsm,
        "CreateTimestamp": cluster.created.isoformat(),
    }


def _check_add(args: argparse.Namespace) -> None:
    """The options of ``add``, and the trust anchor file read into ``args.anchor``."""
    if args.softhsm:
        if args.module or args.token_label or args.trust_anchor:
            raise ValueError(
                "--softhsm makes its own token and trust anchor: give no --module, "
                "--token-label or --trust-anchor"
            )
        return
    missing = [
        option
        for option, given in (
            ("CLUSTER_ID", args.cluster_id),
            ("--module", args.module),
            ("--token-label", args.token_label),
            ("--trust-anchor", args.trust_anchor),
        )
        if given is None
    ]
    if missing:
        raise ValueError("hsm-cluster add needs " + ", ".join(missing) + " (or --softhsm)")
    try:
        args.anchor = args.trust_anchor.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"trust anchor {args.trust_anchor}: cannot read it: {exc}") from None


def _add(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.hsm_clusters import add_cluster

    if args.softhsm:
        return _add_softhsm(core, args)
    cluster = add_cluster(
        core,
        _account(args),
        args.cluster_id,
        module_path=str(args.module),
        token_label=args.token_label,
        trust_anchor=args.anchor,
        hsm_count=args.hsm_count,
    )
    return _entry(cluster)


def _add_softhsm(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.crypto.trust_anchor import self_signed_trust_anchor
    from strongroom.domain.ids import new_cluster_id
    from strongroom.keystores import softhsm
    from strongroom.server.settings import Settings
    from strongroom.services.hsm_clusters import add_cluster

    settings: Settings = _settings(args)
    cluster_id = args.cluster_id or new_cluster_id()
    account = _account(args)
    anchor = self_signed_trust_anchor(f"Strongroom {cluster_id} trust anchor", core.clock())
    pin = softhsm.new_pin()
    # Register first (the id is checked and taken), then make the token and the PEM file.
    cluster = add_cluster(
        core,
        account,
        cluster_id,
        module_path=str(softhsm.module_path()),
        token_label=cluster_id,
        trust_anchor=anchor,
        hsm_count=SOFTHSM_HSM_COUNT,
        softhsm=True,
    )
    softhsm.create_token(settings.data_dir, cluster.token_label, pin)
    folder = settings.data_dir / "hsm-clusters"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{cluster_id}-customerCA.crt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(anchor)
    return {"ClusterId": cluster_id, "TrustAnchorCertificate": str(path), "KeyStorePassword": pin}


def _settings(args: argparse.Namespace) -> Any:
    from strongroom.cli.common import settings_from

    return settings_from(args)


def _list(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.hsm_clusters import list_clusters

    account = _account(args) if args.in_account else None
    return {"Clusters": [_entry(c) for c in list_clusters(core, account)]}


def _remove(core: Core, args: argparse.Namespace) -> dict[str, Any]:
    from strongroom.services.hsm_clusters import remove_cluster

    cluster = remove_cluster(core, _account(args), args.cluster_id)
    return {"Removed": cluster.cluster_id}
