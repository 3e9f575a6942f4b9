"""The database schema (SQLAlchemy Core). Changes go through Alembic migrations.

Times are stored as epoch seconds (float), the same on SQLite and PostgreSQL.
Secrets (key material, access-key secrets) are stored only wrapped under the root key.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("created", sa.Float, nullable=False),
)

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("arn", sa.String(2048), primary_key=True),
    sa.Column("account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(512), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    # A role's MaxSessionDuration in seconds; NULL: IAM's default, one hour (and users).
    sa.Column("max_session_duration", sa.Integer, nullable=True),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(128), primary_key=True),
    sa.Column("principal_arn", sa.String(2048), sa.ForeignKey("principals.arn"), nullable=False),
    sa.Column("wrapped_secret", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

keys = sa.Table(
    "keys",
    metadata,
    sa.Column("arn", sa.String(256), primary_key=True),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("key_usage", sa.String(32), nullable=False),
    sa.Column("key_spec", sa.String(32), nullable=False),
    sa.Column("origin", sa.String(32), nullable=False),
    sa.Column("key_manager", sa.String(16), nullable=False),
    sa.Column("multi_region", sa.Boolean, nullable=False),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("creation_date", sa.Float, nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("deletion_date", sa.Float, nullable=True),
    sa.Column("pending_window_days", sa.Integer, nullable=True),
    # Multi-Region keys: the Region of the set's primary key (None: a single-Region key).
    sa.Column("primary_region", sa.String(32), nullable=True),
    # ListKeys: the equality columns, then the listing's order (creation date, ARN).
    sa.Index("ix_keys_listing", "account_id", "region", "creation_date", "arn"),
    sa.Index("ix_keys_deletion_date", "deletion_date"),
    # The related multi-Region keys of a key id, in every Region.
    sa.Index("ix_keys_account_key_id", "account_id", "key_id"),
    # Keys in a transient state (Creating) that a scheduled job moves on.
    sa.Index("ix_keys_state", "state"),
    sa.Column("rotation_period_days", sa.Integer, nullable=True),
    sa.Column("next_rotation_date", sa.Float, nullable=True),
    sa.Column("current_material_id", sa.String(64), nullable=True),
    sa.Column("expiration_model", sa.String(32), nullable=True),
    sa.Column("valid_to", sa.Float, nullable=True),
    sa.Index("ix_keys_next_rotation_date", "next_rotation_date"),
    # The custom key store the key's material lives in (None: the root-key-wrapped store).
    sa.Column("custom_key_store_id", sa.String(24), nullable=True),
    sa.Index("ix_keys_custom_key_store_id", "custom_key_store_id"),
    # The external key (XksKeyId) of a key in an external key store; one KMS key per
    # external key in a store.
    sa.Column("xks_key_id", sa.String(128), nullable=True),
    sa.Index("uq_keys_store_xks_key_id", "custom_key_store_id", "xks_key_id", unique=True),
)

key_materials = sa.Table(
    "key_materials",
    metadata,
    sa.Column("key_arn", sa.String(256), sa.ForeignKey("keys.arn"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

# What is known of each material version apart from the material: its KeyMaterialId, state
# and rotation, and for imported material its import state and expiry. Deleting imported
# material (DeleteImportedKeyMaterial, expiry) deletes its key_materials row and keeps this.
key_material_versions = sa.Table(
    "key_material_versions",
    metadata,
    sa.Column("key_arn", sa.String(256), sa.ForeignKey("keys.arn"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("material_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(48), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("rotation_date", sa.Float, nullable=True),
    sa.Column("rotation_type", sa.String(16), nullable=True),
    sa.Column("import_state", sa.String(16), nullable=True),
    sa.Column("expiration_model", sa.String(32), nullable=True),
    sa.Column("valid_to", sa.Float, nullable=True),
    sa.Column("description", sa.String(256), nullable=True),
    sa.Index("ix_key_material_versions_valid_to", "valid_to"),
)

# GetParametersForImport: the wrapping private key (wrapped under the root key) of each
# import token, found by the token's SHA-256; pruned once expired.
import_tokens = sa.Table(
    "import_tokens",
    metadata,
    sa.Column("token_digest", sa.String(64), primary_key=True),
    sa.Column("key_arn", sa.String(256), nullable=False),
    sa.Column("wrapping_algorithm", sa.String(32), nullable=False),
    sa.Column("wrapping_key_spec", sa.String(16), nullable=False),
    sa.Column("wrapped_private_key", sa.LargeBinary, nullable=False),
    sa.Column("valid_to", sa.Float, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Index("ix_import_tokens_key_arn", "key_arn"),
    sa.Index("ix_import_tokens_valid_to", "valid_to"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("target_key_id", sa.String(64), nullable=False),
    sa.Column("creation_date", sa.Float, nullable=False),
    sa.Column("last_updated_date", sa.Float, nullable=False),
    # The aliases of a key (ListAliases with KeyId), in name order.
    sa.Index("ix_aliases_target_name", "account_id", "region", "target_key_id", "name"),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("key_arn", sa.String(256), sa.ForeignKey("keys.arn"), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
)

# One row per change of a key's state, policy, material or aliases: every process
# polls the newest seq and drops what it cached for the keys named since.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_arn", sa.String(256), nullable=False),
    sa.Column("changed_at", sa.Float, nullable=False),
    # The prune job deletes by age every minute.
    sa.Index("ix_changes_changed_at", "changed_at"),
)

# Inline identity policies (IAM policy documents) of users and roles, by policy name.
identity_policies = sa.Table(
    "identity_policies",
    metadata,
    sa.Column("principal_arn", sa.String(2048), sa.ForeignKey("principals.arn"), primary_key=True),
    sa.Column("policy_name", sa.String(128), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

# Grants on keys (CreateGrant); deleted with their key. Operations and the constraint's
# encryption context are JSON; constraint_type is EncryptionContextEquals or
# EncryptionContextSubset (at most one constraint a grant).
grants = sa.Table(
    "grants",
    metadata,
    sa.Column("grant_id", sa.String(64), primary_key=True),
    sa.Column("key_arn", sa.String(256), sa.ForeignKey("keys.arn"), nullable=False),
    sa.Column("grantee_principal", sa.String(256), nullable=False),
    sa.Column("retiring_principal", sa.String(256), nullable=True),
    sa.Column("operations", sa.Text, nullable=False),
    sa.Column("constraint_type", sa.String(32), nullable=True),
    sa.Column("constraint_context", sa.Text, nullable=True),
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("issuing_account", sa.String(256), nullable=False),
    sa.Column("creation_date", sa.Float, nullable=False),
    sa.Index("ix_grants_key", "key_arn", "creation_date", "grant_id"),
    sa.Index("ix_grants_retiring", "retiring_principal", "creation_date", "grant_id"),
)

# How many grants each key has (grantee_principal "") and each grantee has on it: the quotas
# "Grants per KMS key" and grants per grantee per key, read by CreateGrant without counting
# the key's grants (up to 50,000). Kept by the store as grants are inserted and deleted
# (``sql/grants.py``), in CreateGrant's transaction, which holds the key's row.
grant_counts = sa.Table(
    "grant_counts",
    metadata,
    sa.Column("key_arn", sa.String(256), primary_key=True),
    sa.Column("grantee_principal", sa.String(256), primary_key=True),
    sa.Column("grants", sa.Integer, nullable=False),
)

# IAM tags of users and roles (aws:PrincipalTag/<key>). Keys are unique per principal
# regardless of case, as IAM's are; the service keeps them so.
principal_tags = sa.Table(
    "principal_tags",
    metadata,
    sa.Column("principal_arn", sa.String(2048), sa.ForeignKey("principals.arn"), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
)

# A role's trust policy (who may assume it); a role without a row trusts its account root.
role_trust_policies = sa.Table(
    "role_trust_policies",
    metadata,
    sa.Column("role_arn", sa.String(2048), sa.ForeignKey("principals.arn"), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)

# Temporary credentials of role sessions (AssumeRole): the secret wrapped under the root
# key, the session token only as its SHA-256.
role_sessions = sa.Table(
    "role_sessions",
    metadata,
    sa.Column("access_key_id", sa.String(128), primary_key=True),
    sa.Column("role_arn", sa.String(2048), sa.ForeignKey("principals.arn"), nullable=False),
    sa.Column("session_name", sa.String(64), nullable=False),
    sa.Column("wrapped_secret", sa.LargeBinary, nullable=False),
    sa.Column("token_sha256", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expiration", sa.Float, nullable=False),
    sa.Index("ix_role_sessions_expiration", "expiration"),
)

# The key check value of the root key the database is wrapped under (never the key): one
# row, id 1. A server whose root key gives another value refuses to start.
root_key_check = sa.Table(
    "root_key_check",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("check_value", sa.LargeBinary, nullable=False),
    sa.Column("recorded", sa.Float, nullable=False),
)

# The root key registry (services/root_key.py): every root key the database has been wrapped
# under since a migration or rotation, by id (the first 8 bytes of its check value, hex),
# with where it is (never a PIN: each server has its own PIN source) and its state:
# "next" (opened by every server, not yet wrapping), "active" (wraps), "retiring" (being
# re-wrapped away from; still unwraps), "retired" (nothing is wrapped under it). Empty for a
# database that was never migrated or rotated and started on a file root key.
root_keys = sa.Table(
    "root_keys",
    metadata,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("check_value", sa.LargeBinary, nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("module", sa.String(1024), nullable=True),
    sa.Column("token_label", sa.String(64), nullable=True),
    sa.Column("key_label", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

# The last successful cryptographic use of each key (GetKeyLastUsage), written by each
# process's flush job: a row is only ever replaced by a newer use.
key_last_usage = sa.Table(
    "key_last_usage",
    metadata,
    sa.Column("key_arn", sa.String(256), primary_key=True),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("used", sa.Float, nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(64), nullable=False),
)

# When tracking of key usage began (revision 0009 ran): one row, id 1.
key_usage_tracking = sa.Table(
    "key_usage_tracking",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started", sa.Float, nullable=False),
)

# PKCS#11 tokens registered as "CloudHSM clusters" of an account (``strongroom admin
# hsm-cluster``): module, token label, trust anchor certificate (PEM), HSM count. No PIN.
hsm_clusters = sa.Table(
    "hsm_clusters",
    metadata,
    sa.Column("cluster_id", sa.String(24), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("module_path", sa.Text, nullable=False),
    sa.Column("token_label", sa.String(64), nullable=False),
    sa.Column("trust_anchor", sa.Text, nullable=False),
    sa.Column("hsm_count", sa.Integer, nullable=False),
    sa.Column("softhsm", sa.Boolean, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Index("ix_hsm_clusters_account", "account_id", "cluster_id"),
)

# Custom key stores: AWS_CLOUDHSM (cluster, trust anchor) or EXTERNAL_KEY_STORE (the xks_*
# proxy settings); the kmsuser password or the proxy's secret access key wrapped under the
# root key (AAD names the store id); the connection state every process and node reads.
custom_key_stores = sa.Table(
    "custom_key_stores",
    metadata,
    sa.Column("store_id", sa.String(24), primary_key=True),
    sa.Column("account_id", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("store_type", sa.String(32), nullable=False),
    sa.Column("cluster_id", sa.String(24), sa.ForeignKey("hsm_clusters.cluster_id"), nullable=True),
    sa.Column("trust_anchor", sa.Text, nullable=True),
    sa.Column("wrapped_password", sa.LargeBinary, nullable=False),
    sa.Column("xks_uri_endpoint", sa.String(128), nullable=True),
    sa.Column("xks_uri_path", sa.String(128), nullable=True),
    sa.Column("xks_connectivity", sa.String(32), nullable=True),
    sa.Column("xks_access_key_id", sa.String(30), nullable=True),
    sa.Column("connection_state", sa.String(16), nullable=False),
    sa.Column("connection_error_code", sa.String(48), nullable=True),
    sa.Column("creation_date", sa.Float, nullable=False),
    sa.UniqueConstraint("account_id", "region", "name", name="uq_custom_key_stores_name"),
    sa.Index("ix_custom_key_stores_listing", "account_id", "region", "creation_date", "store_id"),
    sa.Index("ix_custom_key_stores_cluster", "cluster_id"),
)

# Quota values set by the operator (``strongroom admin quota set``), by AWS's Service Quotas
# name; account_id "*" is the value for every account without one of its own. A quota
# without a row has AWS's default.
quota_values = sa.Table(
    "quota_values",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("quota_name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)

# Faults injected for users' CI (``strongroom admin fault set``): the requests of an account
# ("*": every account) to an operation ("*": every operation) fail with error_code at the
# given rate (0 to 1), after latency_ms.
faults = sa.Table(
    "faults",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("operation", sa.String(64), primary_key=True),
    sa.Column("error_code", sa.String(64), nullable=False),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

# The shared token buckets of request quotas (``server/quotas.py``) when several processes
# or nodes serve: each process takes its tokens from here in leases. ``tokens`` as of
# ``updated`` (epoch seconds); the bucket refills at its quota's rate up to its capacity.
quota_buckets = sa.Table(
    "quota_buckets",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("bucket", sa.String(160), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)

# How many customer managed keys (any state) each account has in each Region: the "AWS KMS
# keys" quota, read by CreateKey and ReplicateKey without counting the keys. The store keeps
# it in the transaction that inserts or deletes a key (``sql/keys.py``); on PostgreSQL the
# row's lock makes CreateKeys of one account count one after the other, on SQLite the write
# lock does. AWS managed keys do not count (AWS KMS Developer Guide, "Resource quotas").
key_counts = sa.Table(
    "key_counts",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("customer_keys", sa.Integer, nullable=False),
)

# How many keys (customer and AWS managed) each account has in each Region in each state: the
# keys by state of the metrics, read without counting the keys. The store keeps it in the
# transaction that inserts, deletes or changes the state of a key (``sql/keys.py``); a row
# may hold 0 (its keys gone or moved to another state).
key_state_counts = sa.Table(
    "key_state_counts",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("state", sa.String(32), primary_key=True),
    sa.Column("key_count", sa.Integer, nullable=False),
)

# Parameter Store (the SSM API): one row per parameter with its newest version, the versions
# (each with its value: the text of a String or StringList; for a SecureString only the KMS
# ciphertext blob, never the plaintext), and the parameter's tags.
ssm_parameters = sa.Table(
    "ssm_parameters",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(1011), primary_key=True),
    sa.Column("current_version", sa.Integer, nullable=False),
)

ssm_parameter_versions = sa.Table(
    "ssm_parameter_versions",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(1011), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("value", sa.Text, nullable=True),
    sa.Column("ciphertext", sa.LargeBinary, nullable=True),
    sa.Column("key_id", sa.String(256), nullable=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("allowed_pattern", sa.Text, nullable=False),
    sa.Column("tier", sa.String(32), nullable=False),
    sa.Column("data_type", sa.String(128), nullable=False),
    sa.Column("modified", sa.Float, nullable=False),
    sa.Column("modified_user", sa.String(2048), nullable=False),
)

ssm_parameter_tags = sa.Table(
    "ssm_parameter_tags",
    metadata,
    sa.Column("account_id", sa.String(12), primary_key=True),
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(1011), primary_key=True),
    sa.Column("tag_key", sa.String(128), primary_key=True),
    sa.Column("tag_value", sa.String(256), nullable=False),
)
