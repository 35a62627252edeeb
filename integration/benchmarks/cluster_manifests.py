"""The cluster the benchmarks load: ClusterIP Services and their EndpointSlices, as YAML.

Service `i` has the ClusterIP `service_ip(i)` and its endpoint `j` the
address `endpoint_ip(i, j)`, so a benchmark can build the same table another
way (ipvsadm-restore's input, an emulated API server's objects).
"""

from __future__ import annotations


def service_ip(index: int) -> str:
    return f"10.96.{index // 250}.{index % 250 + 1}"


def endpoint_ip(index: int, endpoint: int) -> str:
    return f"10.{128 + index // 256 % 64}.{index % 256}.{endpoint + 1}"


def manifests(services: int, endpoints: int, grown: int | None = None) -> str:
    """`services` ClusterIP Services with `endpoints` ready endpoints each, as one YAML stream.

    `grown`: the index of a Service that has one endpoint more.
    """
    documents = []
    for i in range(services):
        name = f"svc-{i}"
        documents.append(
            f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: bench}}
spec:
  clusterIP: {service_ip(i)}
  clusterIPs: [{service_ip(i)}]
  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]
"""
        )
        addresses = [endpoint_ip(i, j) for j in range(endpoints + (grown == i))]
        listed = "".join(f"  - addresses: [{a}]\n" for a in addresses)
        documents.append(
            f"""apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-abcde
  namespace: bench
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: 8080, protocol: TCP}}]
endpoints:
{listed}"""
        )
    return "---\n".join(documents)
