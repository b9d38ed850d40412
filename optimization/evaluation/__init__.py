"""Evaluating individuals: the built problem (parameters, simulator and objective together) and
one individual's evaluation with its status — what the cluster code maps and the run loop asks
for."""
