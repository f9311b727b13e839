"""Benchmarks: sweeps of methods x datasets x IPC x seeds (on Ray), their cells, tables, plots.

`config` reads a sweep file into typed cells, `cells` runs one (distil or select -> save ->
evaluate -> append rows), `sweep` schedules them locally or on a cluster, `tables` and `plots`
turn result rows into the benchmark's tables and figures. It sits above the engine: it calls
the front door (`datadistill.distill.run`) and nothing below imports it.
"""
