"""Strongroom: a self-hosted key management service that speaks the AWS KMS API."""
