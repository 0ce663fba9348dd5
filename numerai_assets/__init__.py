"""The Dagster code location of the Numerai service."""
