"""Node-local records ipvsctl keeps between runs (what the kernel cannot tell us)."""
