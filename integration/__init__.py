"""ipvsctl against a real kernel with IPVS.

`python -m integration` runs the unit tests on the host and the integration
tests in a kernel that has IPVS (the host's, or a User-Mode Linux one from
`integration.kernel_lab`), then prints one line summing both.

    kernel_lab/   the lab tool: a kernel with IPVS (or nftables) to run a command in
    tests/        the integration tests, their fixtures, and netfilter/ (run under QEMU)
    benchmarks/   speed, measured by scripts (`python -m integration.benchmarks.bench_NAME`)
"""
