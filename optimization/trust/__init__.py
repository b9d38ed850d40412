"""How far to trust a fit: what the stored population says about each parameter
(``identifiability``) and what finite differences at the best say (``sensitivity``).

Numbers only: no Prefect, no figures, no store access (callers pass arrays).
"""
