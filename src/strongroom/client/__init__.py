"""``strongroom.client``: envelope encryption for Python applications, in the AWS
Encryption SDK's message format, under a KMS key of any KMS-compatible endpoint.

A pure client: it speaks to KMS only through botocore (the AWS environment and profile
give the endpoint, Region and credentials, as for any AWS tool) and writes messages only
through the ``aws-encryption-sdk`` library, so what it writes the SDKs and the
``aws-encryption-cli`` read, and the reverse. Install with ``pip install strongroom[client]``.

>>> from strongroom.client import CacheSettings, Client
>>> client = Client("alias/app", endpoint_url="http://127.0.0.1:8080", region="us-east-1",
...                 cache=CacheSettings(max_age=300, max_messages=1000))
>>> message = client.encrypt(b"secret", {"tenant": "t-1"})
>>> client.decrypt(message, {"tenant": "t-1"})
b'secret'
>>> with open("big", "rb") as src, open("big.enc", "wb") as dst:
...     client.encrypt_stream(src, dst, {"tenant": "t-1"}, size=os.path.getsize("big"))

Every failure is a :class:`ClientError`: :class:`KmsCallError` (KMS refused a call, after
botocore's retries), :class:`ContextMismatchError`, :class:`NoUsableKeyError`,
:class:`MalformedMessageError`. ``client.stats`` counts the KMS calls and retries.
"""

from __future__ import annotations

from strongroom.client.client import Client
from strongroom.client.errors import (
    ClientError,
    ContextMismatchError,
    KmsCallError,
    MalformedMessageError,
    NoUsableKeyError,
)
from strongroom.client.kms import CallStats
from strongroom.client.settings import CacheSettings, RetrySettings

__all__ = [
    "CacheSettings",
    "CallStats",
    "Client",
    "ClientError",
    "ContextMismatchError",
    "KmsCallError",
    "MalformedMessageError",
    "NoUsableKeyError",
    "RetrySettings",
]
