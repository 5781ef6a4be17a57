"""Benchmarks of the product against the alternatives a user would pick (see bench/README.md).

``python -m bench.search`` (search engines by collection size), ``python -m bench.curve``
(cost against size, log-log), ``python -m bench.encode`` (encoder throughput by batch
size), ``python -m bench.serve`` (HTTP latency and QPS by concurrency). Each writes JSON
and a PNG plot into ``bench/results/`` and prints a table.
"""
