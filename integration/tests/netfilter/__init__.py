"""Tests that need netfilter for IP traffic (nftables NAT, filter, reject).

UML's kernel has none, so `python -m integration` runs this directory in
Debian's own kernel under QEMU (`python -m integration.kernel_lab --qemu`).
"""
