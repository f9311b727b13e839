"""Third-party messages that say nothing to a `distill` user, silenced at the command line only.

Each filter names one message and its source; every other warning (ours, torch's numerics,
a real deprecation in code the user wrote) still shows. Avalanche re-enables its deprecation
warnings on every call (`warnings.simplefilter("once")` inside its decorator), so a filter
would not hold: its messages are dropped where they are shown instead.
"""

from __future__ import annotations

import logging
import warnings

LOG_NOISE = {
    # torch.utils.cpp_extension, on every CPU machine with a CUDA_HOME: nothing to do
    "torch.utils.cpp_extension": "No CUDA runtime is found",
    # apps/federated simulates on purpose with Flower's Python API
    "flwr": "The `run_simulation` function is deprecated",
}
AVALANCHE_NOISE = (
    "Call to deprecated",  # avalanche._annotations.deprecated
    "Avalanche is transitioning to strategy constructors",
    "classes_in_experience[exp_id] is deprecated",
)


class DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def is_avalanche_noise(message, filename: str) -> bool:
    text = str(message)
    return any(s in text for s in AVALANCHE_NOISE) and (
        "avalanche" in filename or "continual" in filename
    )


def silence_third_party() -> None:
    """Install the filters (idempotent)."""
    for logger, text in LOG_NOISE.items():
        log = logging.getLogger(logger)
        if not any(isinstance(f, DropMessage) and f.text == text for f in log.filters):
            log.addFilter(DropMessage(text))
    shown = warnings.showwarning
    if getattr(shown, "drops_avalanche_noise", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not is_avalanche_noise(message, filename):
            shown(message, category, filename, lineno, file, line)

    showwarning.drops_avalanche_noise = True
    warnings.showwarning = showwarning
