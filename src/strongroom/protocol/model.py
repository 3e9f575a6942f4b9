"""The service models that botocore ships (KMS, and SSM for Parameter Store), with compiled
per-operation codecs."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strongroom.domain.errors import UnknownOperationException
from strongroom.protocol._shapes import ShapeCompiler
from strongroom.protocol.codec import OperationCodec


class ServiceModel:
    """The KMS model, loaded once; compiled per-operation validators built lazily and cached.

    ``operation_names`` are the bare operation names (``Encrypt``), without the
    ``TrentService.`` target prefix.
    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        """``model`` is a botocore ``service-2`` document."""
        self._operations: Mapping[str, Mapping[str, Any]] = model["operations"]
        self._service = str(model.get("metadata", {}).get("serviceId", "KMS"))
        self._compiler = ShapeCompiler(model["shapes"])
        self._codecs: dict[str, OperationCodec] = {}
        self._lock = threading.Lock()
        self.operation_names: frozenset[str] = frozenset(self._operations)

    def operation(self, name: str) -> OperationCodec:
        """The codec of operation ``name``; raises UnknownOperationException if not modelled."""
        codec = self._codecs.get(name)
        if codec is not None:
            return codec
        spec = self._operations.get(name)
        if spec is None:
            raise UnknownOperationException(
                f"The operation {name!r} is not part of {self._service}"
            )
        with self._lock:
            codec = self._codecs.get(name)
            if codec is None:
                input_ref = spec.get("input")
                validate = (
                    None if input_ref is None else self._compiler.validator(input_ref["shape"])
                )
                codec = self._codecs[name] = OperationCodec(name, validate)
        return codec


# Constraints of the model this server does not apply here, by shape: the service applies
# its own rule to those members instead. XksProxyUriEndpointType's pattern
# ^https://[a-zA-Z0-9.-]+$ admits no port and no http; services.custom_key_stores admits
# a port, and http for a loopback proxy (its length, 10 to 128, is still checked here).
WIDENED: Mapping[str, tuple[str, ...]] = {"XksProxyUriEndpointType": ("pattern",)}


def _widened(document: Mapping[str, Any]) -> dict[str, Any]:
    shapes = dict(document["shapes"])
    for name, dropped in WIDENED.items():
        shapes[name] = {k: v for k, v in shapes[name].items() if k not in dropped}
    return {**document, "shapes": shapes}


def service_document(service: str) -> dict[str, Any]:
    """botocore's ``service-2`` document of ``service`` (its newest API version), as
    ``botocore.loaders.create_loader().load_service_model(service, "service-2")`` gives it.

    Read from the data directory botocore ships without importing botocore: its loader pulls
    in urllib3, dateutil and botocore's utilities, ~4 MiB in every worker (issue 17). Where
    that loader would find more than that directory's one file (a model of the service in
    ``~/.aws/models``, or an ``sdk-extras`` document to merge), the loader itself reads it."""
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed: the service models are its")
    root = Path(spec.origin).parent / "data" / service
    versions = sorted(
        d.name
        for d in root.iterdir()
        if (d / "service-2.json").is_file() or (d / "service-2.json.gz").is_file()
    )
    newest = root / versions[-1] if versions else root
    customer = Path("~/.aws/models").expanduser() / service
    if not versions or customer.is_dir() or any(newest.glob("service-2.*-extras.json")):
        from botocore.loaders import create_loader

        document: dict[str, Any] = create_loader().load_service_model(service, "service-2")
        return document
    plain = newest / "service-2.json"
    if plain.is_file():  # botocore's order: .json before .json.gz
        payload = plain.read_bytes()
    else:
        with gzip.open(newest / "service-2.json.gz", "rb") as f:
            payload = f.read()
    loaded: dict[str, Any] = json.loads(payload.decode("utf-8"))
    return loaded


@functools.cache
def load_model() -> ServiceModel:
    """The KMS service model (botocore ``kms`` ``service-2``, less ``WIDENED``), loaded once
    per process."""
    return ServiceModel(_widened(service_document("kms")))


def _without_unicode_classes(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` less the patterns that use Java's Unicode classes (``\\p{L}``), which
    Python's ``re`` lacks: the services check those members themselves (SSM's TagKey and
    TagValue: ``services.parameters``)."""
    shapes = {
        name: {k: v for k, v in shape.items() if k != "pattern"}
        if "\\p{" in str(shape.get("pattern", ""))
        else shape
        for name, shape in document["shapes"].items()
    }
    return {**document, "shapes": shapes}


@functools.cache
def load_ssm_model() -> ServiceModel:
    """The SSM service model (botocore ``ssm`` ``service-2``, less the patterns
    ``_without_unicode_classes`` drops), for the Parameter Store operations; loaded once per
    process."""
    return ServiceModel(_without_unicode_classes(service_document("ssm")))
