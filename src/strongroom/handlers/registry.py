"""The dispatch table: operation -> handler. Which operations run on the event loop is their
row's ``hot_path`` (``domain.operations``); an operation of the model with no handler here
answers UnsupportedOperationException."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.domain.operations import CHANGES_STATE, HOT_PATH, Operation
from strongroom.handlers import (
    aliases,
    asymmetric,
    crypto,
    custom_key_stores,
    data_key_pairs,
    encapsulation,
    grants,
    imports,
    keys,
    last_usage,
    mac,
    multiregion,
    policies,
    rotation,
)
from strongroom.services.core import Core, RequestContext

Handler = Callable[[Core, RequestContext, dict[str, Any]], dict[str, Any]]

Op = Operation

HANDLERS: Mapping[Operation, Handler] = {
    Op.CREATE_KEY: keys.create_key,
    Op.DESCRIBE_KEY: keys.describe_key,
    Op.GET_KEY_LAST_USAGE: last_usage.get_key_last_usage,
    Op.LIST_KEYS: keys.list_keys,
    Op.ENABLE_KEY: keys.enable_key,
    Op.DISABLE_KEY: keys.disable_key,
    Op.UPDATE_KEY_DESCRIPTION: keys.update_key_description,
    Op.SCHEDULE_KEY_DELETION: keys.schedule_key_deletion,
    Op.CANCEL_KEY_DELETION: keys.cancel_key_deletion,
    Op.REPLICATE_KEY: multiregion.replicate_key,
    Op.UPDATE_PRIMARY_REGION: multiregion.update_primary_region,
    Op.GET_KEY_POLICY: policies.get_key_policy,
    Op.PUT_KEY_POLICY: policies.put_key_policy,
    Op.LIST_KEY_POLICIES: policies.list_key_policies,
    Op.CREATE_ALIAS: aliases.create_alias,
    Op.UPDATE_ALIAS: aliases.update_alias,
    Op.DELETE_ALIAS: aliases.delete_alias,
    Op.LIST_ALIASES: aliases.list_aliases,
    Op.TAG_RESOURCE: aliases.tag_resource,
    Op.UNTAG_RESOURCE: aliases.untag_resource,
    Op.LIST_RESOURCE_TAGS: aliases.list_resource_tags,
    Op.ENCRYPT: crypto.encrypt,
    Op.DECRYPT: crypto.decrypt,
    Op.RE_ENCRYPT: crypto.re_encrypt,
    Op.GENERATE_DATA_KEY: crypto.generate_data_key,
    Op.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT: crypto.generate_data_key_without_plaintext,
    Op.GENERATE_RANDOM: crypto.generate_random,
    Op.GET_PUBLIC_KEY: asymmetric.get_public_key,
    Op.SIGN: asymmetric.sign,
    Op.VERIFY: asymmetric.verify,
    Op.DERIVE_SHARED_SECRET: asymmetric.derive_shared_secret,
    Op.ENCAPSULATE: encapsulation.encapsulate,
    Op.DECAPSULATE: encapsulation.decapsulate,
    Op.GENERATE_MAC: mac.generate_mac,
    Op.VERIFY_MAC: mac.verify_mac,
    Op.GENERATE_DATA_KEY_PAIR: data_key_pairs.generate_data_key_pair,
    Op.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT: (
        data_key_pairs.generate_data_key_pair_without_plaintext
    ),
    Op.CREATE_GRANT: grants.create_grant,
    Op.LIST_GRANTS: grants.list_grants,
    Op.LIST_RETIRABLE_GRANTS: grants.list_retirable_grants,
    Op.RETIRE_GRANT: grants.retire_grant,
    Op.REVOKE_GRANT: grants.revoke_grant,
    Op.ENABLE_KEY_ROTATION: rotation.enable_key_rotation,
    Op.DISABLE_KEY_ROTATION: rotation.disable_key_rotation,
    Op.GET_KEY_ROTATION_STATUS: rotation.get_key_rotation_status,
    Op.ROTATE_KEY_ON_DEMAND: rotation.rotate_key_on_demand,
    Op.LIST_KEY_ROTATIONS: rotation.list_key_rotations,
    Op.GET_PARAMETERS_FOR_IMPORT: imports.get_parameters_for_import,
    Op.IMPORT_KEY_MATERIAL: imports.import_key_material,
    Op.DELETE_IMPORTED_KEY_MATERIAL: imports.delete_imported_key_material,
    Op.CREATE_CUSTOM_KEY_STORE: custom_key_stores.create_custom_key_store,
    Op.DESCRIBE_CUSTOM_KEY_STORES: custom_key_stores.describe_custom_key_stores,
    Op.CONNECT_CUSTOM_KEY_STORE: custom_key_stores.connect_custom_key_store,
    Op.DISCONNECT_CUSTOM_KEY_STORE: custom_key_stores.disconnect_custom_key_store,
    Op.UPDATE_CUSTOM_KEY_STORE: custom_key_stores.update_custom_key_store,
    Op.DELETE_CUSTOM_KEY_STORE: custom_key_stores.delete_custom_key_store,
}

__all__ = ["CHANGES_STATE", "HANDLERS", "HOT_PATH", "Handler"]
