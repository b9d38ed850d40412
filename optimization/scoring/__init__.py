"""Scoring a simulation against its target: cost functions, eFEL features, objectives, Pareto
fronts."""
