"""Run storage: the Zarr run store, metadata.json export."""

from neuroptimus.storage.runs.run_store import RunStore, StoreError

__all__ = ["RunStore", "StoreError"]
