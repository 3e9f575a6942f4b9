"""The :class:`Client`: AWS Encryption SDK messages under a KMS key, of bytes and of streams
in constant memory, with an optional data key cache."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import aws_encryption_sdk
import botocore.session
from aws_encryption_sdk import (
    CachingCryptoMaterialsManager,
    CommitmentPolicy,
    LocalCryptoMaterialsCache,
)
from aws_encryption_sdk.exceptions import (
    AWSEncryptionSDKClientError,
    DecryptKeyError,
    GenerateKeyError,
)
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError
from cryptography.exceptions import InvalidTag

from strongroom.client.errors import (
    ClientError,
    ContextMismatchError,
    KmsCallError,
    MalformedMessageError,
    NoUsableKeyError,
)
from strongroom.client.keys import decrypting_keys, encryption_key
from strongroom.client.kms import CallStats, KmsClients, region_of
from strongroom.client.settings import CacheSettings, RetrySettings

# Plaintext read per step of a stream: memory stays at a few of these and a frame
# (the SDK's default frame is 4 KiB) whatever the size of the input.
CHUNK = 1 << 20

Progress = Callable[[int], None]
"""Called with the number of input bytes consumed since the last call."""


class Client:
    """Encrypts and decrypts AWS Encryption SDK messages under a KMS key.

    ``key_id`` (a key id, key ARN, alias name or alias ARN) is the key encrypt uses; for
    decrypt it is optional and, when given, the only key decrypt may use (an alias or key
    id is looked up with DescribeKey). The endpoint, Region and credentials come from the
    AWS environment and profile unless ``endpoint_url``, ``region`` or ``profile`` say
    otherwise; ``retries`` sets botocore's retry mode; ``cache`` turns data key caching on.

    Messages use the SDK's default algorithm suite (AES-256-GCM with key commitment,
    HKDF and ECDSA P-384 signatures) under ``REQUIRE_ENCRYPT_REQUIRE_DECRYPT``. Failures
    raise :class:`~strongroom.client.errors.ClientError`."""

    def __init__(
        self,
        key_id: str | None = None,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        cache: CacheSettings | None = None,
        retries: RetrySettings | None = None,
        session: botocore.session.Session | None = None,
    ) -> None:
        self.key_id = key_id
        self.kms = KmsClients(
            endpoint_url=endpoint_url,
            region=region,
            profile=profile,
            retries=retries,
            session=session,
        )
        self._sdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        )
        self._cache = cache
        # One cache for both directions: the two managers keep apart by partition.
        self._local_cache = LocalCryptoMaterialsCache(cache.capacity) if cache else None
        self._encrypting: Any = None
        self._decrypting: Any = None

    @property
    def stats(self) -> CallStats:
        """The KMS calls made so far: count by operation, retries, the last error."""
        return self.kms.stats

    # -- bytes ------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """An Encryption SDK message of ``plaintext`` under the client's key, with the
        encryption ``context`` (stored in the message, bound to it, sent to KMS)."""
        out = io.BytesIO()
        self.encrypt_stream(io.BytesIO(plaintext), out, context, size=len(plaintext))
        return out.getvalue()

    def decrypt(self, message: bytes, context: Mapping[str, str] | None = None) -> bytes:
        """The plaintext of ``message``; each pair of ``context`` must be in the message's
        encryption context (:class:`ContextMismatchError` otherwise, before any plaintext)."""
        out = io.BytesIO()
        self.decrypt_stream(io.BytesIO(message), out, context)
        return out.getvalue()

    # -- streams ----------------------------------------------------------------------

    def encrypt_stream(
        self,
        source: IO[bytes],
        destination: IO[bytes],
        context: Mapping[str, str] | None = None,
        *,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Encrypt ``source`` to ``destination`` in constant memory; returns the number of
        bytes written. ``size`` (the plaintext length, when known) lets the data key cache
        serve the message and a progress bar show a total."""
        manager = self._encryption_manager()
        with self._errors("GenerateDataKey"):
            encryptor = self._sdk.stream(
                mode="e",
                source=_Counting(source, progress),
                encryption_context=dict(context or {}),
                source_length=size,
                **manager,
            )
            written = _copy(encryptor, destination)
            encryptor.close()
            return written

    def decrypt_stream(
        self,
        source: IO[bytes],
        destination: IO[bytes],
        context: Mapping[str, str] | None = None,
        *,
        progress: Progress | None = None,
    ) -> dict[str, str]:
        """Decrypt ``source`` to ``destination`` in constant memory; returns the message's
        encryption context. Each pair of ``context`` must be in it: checked when the header
        is read, before any plaintext is written."""
        manager = self._decryption_manager()
        # Not a ``with`` block: the stream's __exit__ logs a traceback when it is left early
        # (an error, a context mismatch); closed here on success only, where close()
        # checks that the footer was read.
        with self._errors("Decrypt"):
            decryptor = self._sdk.stream(mode="d", source=_Counting(source, progress), **manager)
            found: dict[str, str] = dict(decryptor.header.encryption_context)
            missing = {k: v for k, v in (context or {}).items() if found.get(k) != v}
            if missing:
                pairs = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
                raise ContextMismatchError(
                    f"the message's encryption context does not contain {pairs}"
                )
            _copy(decryptor, destination)
            decryptor.close()
            return found

    # -- materials --------------------------------------------------------------------

    def _encryption_manager(self) -> dict[str, Any]:
        if self.key_id is None:
            raise ClientError("encrypt needs a key: give key_id (--key-id)")
        if self._encrypting is None:
            self._encrypting = self._managed(encryption_key(self.kms, self.key_id))
        return dict(self._encrypting)

    def _decryption_manager(self) -> dict[str, Any]:
        if self._decrypting is None:
            allowed = None if self.key_id is None else [self._key_arn(self.key_id)]
            self._decrypting = self._managed(decrypting_keys(self.kms, allowed))
        return dict(self._decrypting)

    def _managed(self, provider: Any) -> dict[str, Any]:
        if self._cache is None:
            return {"key_provider": provider}
        cache = self._cache
        return {
            "materials_manager": CachingCryptoMaterialsManager(
                master_key_provider=provider,
                cache=self._local_cache,
                max_age=float(cache.max_age),
                max_messages_encrypted=cache.max_messages,
                max_bytes_encrypted=cache.max_bytes,
            )
        }

    def _key_arn(self, key_id: str) -> str:
        """The key ARN of ``key_id``: itself when it is one, else DescribeKey's answer."""
        if key_id.startswith("arn:") and ":key/" in key_id:
            return key_id
        with self._errors("DescribeKey"):
            client = self.kms.for_region(region_of(key_id))
            arn: str = client.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        return arn

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn the SDK's and botocore's errors into this package's, once, here."""
        before = self.kms.stats.last_error
        try:
            yield
        except ClientError:
            raise
        except BotoClientError as exc:
            error = exc.response.get("Error", {})
            raise KmsCallError(
                exc.operation_name, error.get("Code", ""), error.get("Message", "")
            ) from exc
        except BotoCoreError as exc:
            raise ClientError(str(exc)) from exc
        except (GenerateKeyError, DecryptKeyError) as exc:
            last = self.kms.stats.last_error
            if last is not None and last is not before:
                raise KmsCallError(*last) from exc
            if isinstance(exc.__cause__, BotoCoreError):
                raise ClientError(str(exc.__cause__)) from exc
            if isinstance(exc, DecryptKeyError):
                raise NoUsableKeyError(
                    "no encrypted data key of the message is under a KMS key this client may "
                    "use" + (f" (only {self.key_id})" if self.key_id else "")
                ) from exc
            raise ClientError(str(exc)) from exc
        except InvalidTag as exc:
            raise MalformedMessageError(
                "the message was altered: it does not authenticate"
            ) from exc
        except AWSEncryptionSDKClientError as exc:
            if operation == "GenerateDataKey":
                raise ClientError(f"{type(exc).__name__}: {exc}") from exc
            # Serialization and parsing errors of a message that is not one (or is cut).
            detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
            raise MalformedMessageError(
                "not a valid AWS Encryption SDK message, or one cut short: "
                + (detail or type(exc).__name__)
            ) from exc


def _copy(stream: Any, destination: IO[bytes]) -> int:
    written = 0
    while chunk := stream.read(CHUNK):
        destination.write(chunk)
        written += len(chunk)
    return written


class _Counting(io.RawIOBase):
    """A read-only view of ``source`` that reports each read's length to ``progress``."""

    def __init__(self, source: IO[bytes], progress: Progress | None) -> None:
        self._source = source
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        if self._progress is not None and n:
            self._progress(n)
        return n
