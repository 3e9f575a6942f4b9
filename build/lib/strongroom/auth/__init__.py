"""Authentication: AWS Signature Version 4 verification, principals and access keys."""
