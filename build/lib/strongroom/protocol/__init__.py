"""AWS JSON 1.1 protocol for KMS: request bodies in, result and error bodies out.

Driven by the KMS service model that botocore ships, so member types, required members,
lengths, ranges, enums and patterns come from the source. Knows nothing about keys.
"""

from __future__ import annotations

from strongroom.protocol.codec import OperationCodec, encode_error
from strongroom.protocol.model import ServiceModel, load_model

__all__ = ["OperationCodec", "ServiceModel", "encode_error", "load_model"]
