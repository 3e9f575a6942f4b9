"""A bundled XKS proxy: the AWS External Key Store Proxy API v1 backed by a PKCS#11 token.

``strongroom xks-proxy`` serves ``POST [/<uri_prefix>]/kms/xks/v1/keys/{keyId}/metadata``,
``.../encrypt``, ``.../decrypt`` and ``.../health`` for KMS (AWS's, or Strongroom's own
external key stores). AES-GCM runs in the token; its keys never leave it. Every request is
checked with SigV4 (service ``kms-xks-proxy``) against the credential sets of its URI
prefix. Modules: ``errors`` (the spec's error names and statuses), ``requests`` (body
validation, pure), ``keys`` (the token side: usage, AES-GCM with the spec's AAD), ``auth``
(SigV4), ``app`` (the ASGI app and the request log), ``dev`` (the one-command trial setup).
"""
