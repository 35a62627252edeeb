"""Benchmarks: speed measured by scripts, never by timed tests (README, "Benchmarks").

Each `bench_*` module runs as `python -m integration.benchmarks.bench_NAME`,
in the kernel lab when it needs a kernel with IPVS (or, bench_netfilter, with
IP nftables: the lab's `--qemu`). What several of them share:
`cluster_manifests` (the cluster they load) and `timed_runs` (the commands
they time).
"""
