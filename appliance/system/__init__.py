"""Describing the system: ensembles, their components and resources."""
from appliance.system.description import (
    EnsembleDescription,
    SystemFileError,
    load_system,
    system_from_document,
)

__all__ = ["EnsembleDescription", "SystemFileError", "load_system", "system_from_document"]
