"""The node agent (`ipvsctl run`): keeps the kernel in step with the API server.

The one room that runs for a long time. It joins the Kubernetes sources to
reconcile and adds what a long-running node service needs around that loop:
Prometheus metrics, the health endpoints the kubelet and cloud load
balancers probe, and structured logs. It is also the only room that serves
HTTP (`http`, `prometheus_client`).

This file imports nothing, so importing one module of the room does not
start or load the others.
"""
