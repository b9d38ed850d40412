"""The run loop: ask the algorithm, evaluate the population, tell, store, stop."""
