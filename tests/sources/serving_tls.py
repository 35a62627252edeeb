"""A throwaway cluster CA and the API server's certificate, for an emulator on HTTPS.

A pod finds the API server in-cluster: `https://$KUBERNETES_SERVICE_HOST:PORT`,
verified against the service account's `ca.crt`. To test that path the
emulator must serve TLS with a certificate that CA signed for the address it
listens on, as a cluster's API server does. The openssl command line makes
them (no Python dependency for it); each test run makes its own, valid for a
day, and nothing else trusts them.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Explicit, so the system's openssl.cnf (its default extensions) cannot change them.
_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[cluster_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[api_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:{address}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_DAYS = "1"


@dataclass(frozen=True)
class ServingCertificate:
    """The cluster CA (`ca_cert`, what a pod gets as ca.crt) and the API server's
    certificate and key, for `address`."""

    address: str
    ca_cert: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path, address: str = "127.0.0.1") -> ServingCertificate:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "openssl.cnf"
        config.write_text(_CONFIG.format(address=address))
        ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
        key, request, cert = (
            directory / name for name in ("apiserver.key", "apiserver.csr", "apiserver.crt")
        )
        _openssl(
            "req", "-x509", "-config", config, "-extensions", "cluster_ca", *_KEY,
            "-keyout", ca_key, "-out", ca_cert, "-days", _DAYS, "-subj", "/CN=emulated-cluster-ca",
        )  # fmt: skip
        _openssl(
            "req", "-new", "-config", config, *_KEY,
            "-keyout", key, "-out", request, "-subj", "/CN=kube-apiserver",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", "2",
            "-extfile", config, "-extensions", "api_server", "-days", _DAYS, "-out", cert,
        )  # fmt: skip
        return cls(address, ca_cert, cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts only the cluster CA uses."""
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
