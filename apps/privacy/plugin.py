"""Entry point of the privacy app (`datadistill.plugins`): its methods and `distill privacy`."""

from datadistill_apps.privacy import methods  # noqa: F401  (registers dp-dsa)
from datadistill_apps.privacy.cli import add_commands  # noqa: F401
