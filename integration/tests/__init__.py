"""Integration tests: ipvsctl against a real kernel with IPVS.

`python -m integration` runs them in a network namespace of their own, in a
kernel that has IPVS; `netfilter/` needs nftables for IP traffic too, and runs
in Debian's kernel under QEMU when the lab had to boot UML. Run straight in the
host's namespace, or where there is no IPVS, they refuse (conftest.py).
"""
