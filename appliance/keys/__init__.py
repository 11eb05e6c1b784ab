"""Keys of a cluster: the shared cluster key (transport authentication) and the
runtime manager's Ed25519 key pair (it signs what changes an ensemble)."""
from appliance.keys.files import (
    KeyFileError,
    generate_keys,
    load_cluster_key,
    load_manager_private_key,
    load_manager_public_key,
)

__all__ = [
    "KeyFileError",
    "generate_keys",
    "load_cluster_key",
    "load_manager_private_key",
    "load_manager_public_key",
]
