"""Entry point of the privacy app (`datadistill.plugins`): its methods and `distill privacy`."""

from datadistill_apps.privacy import dp_dm_method, methods  # noqa: F401  (dp-dm, dp-dsa)
from datadistill_apps.privacy.cli import add_commands  # noqa: F401
