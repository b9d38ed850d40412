"""Run storage: the Zarr run store, metadata.json export."""

from neuroptimus.storage.run_store import RunStore, StoreError

__all__ = ["RunStore", "StoreError"]
