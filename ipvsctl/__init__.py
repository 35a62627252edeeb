"""ipvsctl: an IPVS load-balancer controller for Kubernetes nodes."""

__version__ = "0.1.0"
