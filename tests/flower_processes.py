"""Finding the Flower and Ray processes a test started, to check none is left behind."""

import psutil


def flower_processes(marker: str) -> list[psutil.Process]:
    """Live processes whose command line or environment contains `marker`."""
    out = []
    for p in psutil.process_iter(["cmdline", "environ", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            text = " ".join(p.info["cmdline"] or []) + str(p.info["environ"] or "")
            if marker in text:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out
