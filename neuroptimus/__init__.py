"""Neuroptimus: fit the parameters of neuron models to experimental data.

The repository keeps one folder per layer at its root (``optimization/``, ``storage/``,
``tasks/``, ``flows/``, ``analysis/``, ``usecases/``); the links beside this file make them
``neuroptimus.optimization``, ``neuroptimus.storage``, … in a clone, an editable install and a
wheel alike, so no bare top-level name is ever imported."""
