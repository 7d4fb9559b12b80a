"""Metrics, correlations and figures. No Kedro imports."""
