"""HoloViews figures of run stores, the self-contained HTML report and the Panel explorer
(``neuroptimus explore``)."""
