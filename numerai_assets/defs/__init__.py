"""Dagster definitions, one concept per module; definitions.py gathers them."""
