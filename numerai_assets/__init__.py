"""The Dagster code location that plays the Numerai tournament, one package per pipeline stage."""
