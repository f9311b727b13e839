"""datadistill.profile: time and peak memory of a block, measured on the CPU."""

import mmap
import time

from datadistill.profile import measure, peak_rss_bytes, reset_peak_rss, rss_bytes

MB = 2**20


def _touch(n_bytes: int) -> None:
    """Resident memory no allocator cache can hide: an anonymous map, every page written."""
    buf, page = mmap.mmap(-1, n_bytes), b"\1" * MB
    for _ in range(n_bytes // MB):
        buf.write(page)
    buf.close()


def test_peak_memory_of_a_block_counts_what_it_touched_and_freed():
    with measure("cpu") as m:
        _touch(200 * MB)
    assert 190 <= m.peak_mem_mb <= 260
    assert m.seconds > 0


def test_cpu_seconds_count_the_blocks_work_not_its_waiting_nor_the_memory_sampler():
    with measure("cpu") as waited:
        time.sleep(1.0)
    with measure("cpu") as worked:
        start = time.thread_time()
        while time.thread_time() - start < 0.5:
            pass
    assert waited.seconds >= 1.0 and waited.cpu_seconds < 0.02  # 200 samples a second
    assert 0.5 <= worked.cpu_seconds <= worked.seconds + 0.01


def test_high_water_mark_resets():
    _touch(150 * MB)
    assert reset_peak_rss()
    assert peak_rss_bytes() < rss_bytes() + 50 * MB  # the earlier 150 MB peak is forgotten


def test_trim_hands_a_tuned_allocators_free_memory_back():
    import torch

    from datadistill import accel

    accel.tune_allocator()  # freed blocks now stay in the process
    x = torch.ones(50 * MB // 4 * 4)  # 200 MB, written
    del x
    kept = rss_bytes()
    accel.trim_memory()
    assert rss_bytes() < kept - 100 * MB
