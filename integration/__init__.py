"""Integration tests: ipvsctl against a real kernel with IPVS.

`python -m integration` runs the unit tests on the host and these tests in a
kernel that has IPVS (the host's, or a User-Mode Linux one from
`integration.kernel_lab`), then prints one line summing both.
"""
