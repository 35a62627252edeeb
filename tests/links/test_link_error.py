"""LinkError messages name the object and the kernel's errno."""

from __future__ import annotations

import errno

from ipvsctl.links import LinkError


def test_a_link_error_names_the_object_the_strerror_and_the_errno_symbol() -> None:
    error = LinkError(errno.ENODEV, "interface kube-ipvs0: add address 10.96.0.10/32")
    assert str(error) == "interface kube-ipvs0: add address 10.96.0.10/32: No such device (ENODEV)"
    assert error.errno == errno.ENODEV
