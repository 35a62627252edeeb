"""The Kubernetes API (`run`): the resources the agent follows, listed and watched.

- `client`: where the API server and its credentials are (kube-proxy's order);
- `requests`: requests on the client's pool, the responses read raw into dicts;
- `resources`: the three resources watched, what each object becomes, and where it goes;
- `watch`: a reflector per resource, LIST then WATCH, for as long as the agent runs;
- `backoff`: retrying while the API server cannot answer, and saying so once.

This file imports nothing, so importing one module (the request helpers, say)
does not load the others.
"""
