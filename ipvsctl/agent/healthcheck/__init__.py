"""The agent's health checks, named as kube-proxy's `pkg/proxy/healthcheck` names them.

- `proxy_health`: whether the agent keeps the kernel in step (`SyncHealth`),
  and the /healthz endpoint (also /livez, /readyz) the kubelet probes;
- `service_ports`: which health check node ports the cached Services want
  (`HealthPortTable`), each with its count of ready endpoints on this node;
- `service_health`: serving those ports (`HealthCheckPorts`), as cloud load
  balancers probe them.

This file imports nothing, as the agent's own does.
"""
