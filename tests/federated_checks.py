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


def ray_pids() -> set[int]:
    """Live processes named as Ray's, also a worker that has not yet taken its `ray::`
    title."""
    from datadistill_apps.federated.processes import is_ray

    out = set()
    for p in psutil.process_iter(["status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and is_ray(p):
                out.add(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def ray_left_behind(before: set[int], wait: float = 30.0) -> list[str]:
    """Ray processes started since `before` (`ray_pids()`) still alive after up to `wait`
    seconds (one that is already exiting, its raylet gone, is not a leak on a busy machine),
    each described with what tells where it came from."""
    import time

    from datadistill_apps.federated.processes import TAG

    procs = []
    for pid in ray_pids() - before:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=wait)
    out = []
    for p in alive:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            env, age = p.environ(), time.time() - p.create_time()
            tag = env.get(TAG, "none" if env else "unreadable")
            out.append(f"{p.pid} {p.name()!r} parent {p.ppid()}, {age:.0f} s old, tag {tag}")
        except psutil.Error:
            pass
    return out
