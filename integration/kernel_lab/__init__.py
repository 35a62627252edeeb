"""The kernel lab: a kernel with IPVS for the integration tests.

The host's kernel when it has IPVS and we may configure it; otherwise a
User-Mode Linux kernel from Debian sid, provisioned once into a cache and
booted as an ordinary process with the host's / as its root file system.
UML's kernel has no nftables for IP traffic, so the netfilter tests run in
Debian's own kernel under QEMU (TCG), the host's / shared over 9p.

    ensure_lab()             provision (once) and describe the UML kernel
    ensure_qemu_lab()        the same for Debian's kernel under QEMU
    host_has_ipvs()          whether the host kernel can serve instead
    run_in_kernel(argv)      run a command in whichever kernel applies
                             (target="qemu" for QEMU's), in a network
                             namespace of its own (netns)
"""

from .errors import LabError
from .host_kernel import host_has_ipvs
from .provision import Lab, ensure_lab
from .qemu_provision import QemuLab, ensure_qemu_lab
from .runner import LAB_FAILED, choose_target, run_in_kernel

__all__ = [
    "LAB_FAILED",
    "Lab",
    "LabError",
    "QemuLab",
    "choose_target",
    "ensure_lab",
    "ensure_qemu_lab",
    "host_has_ipvs",
    "run_in_kernel",
]
