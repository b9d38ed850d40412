"""How far to trust a fit: what the stored population says about each parameter
(``identifiability``), what finite differences at the best say (``sensitivity``), and, where
the costs are residuals of a known noise, the likelihood a posterior sampler reads
(``likelihood``) and what its chain says (``posterior``).

Numbers only: no Prefect, no figures, no store access (callers pass arrays or a problem).
"""
