"""Errors that say what was wrong with the input and where (file, column, era)."""


class DataContractError(ValueError):
    """A tournament file does not follow the Numerai data contract."""
