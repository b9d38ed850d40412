"""HoloViews figures of run stores and the self-contained HTML report."""
