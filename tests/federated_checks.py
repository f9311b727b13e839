"""Checks the federated tests share: processes left behind, images in an upload."""

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


def image_shaped(content, shape) -> list[str]:
    """Names of the tensors in a Flower RecordDict `content` whose last dims are an image's."""
    arrays = [
        (name, t)
        for record in content.values()
        if hasattr(record, "to_torch_state_dict")
        for name, t in record.to_torch_state_dict().items()
    ]
    return [n for n, t in arrays if t.dim() >= 3 and tuple(t.shape[-3:]) == tuple(shape)]
