"""Prefect flows: they wire `pipeline` stages into tasks and hold no parsing or extraction logic."""
