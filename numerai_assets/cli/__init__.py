"""The command line `numerai-pipeline`: commands, the demo, printed summaries, the in-process runners."""

from numerai_assets.cli.main import main

__all__ = ["main"]
