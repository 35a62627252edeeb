"""What one manifest may cost, so that no input can hang `apply` or exhaust memory.

Each bound is far above what a real manifest needs, and each is an error naming
the file and line when crossed (never a silent cut):

- MAX_FILE_BYTES: 100,000 Services with 10 endpoints each are 74 MB as compact
  YAML and 172 MB as `kubectl get -o json`-style JSON; 256 MiB holds either.
- MAX_DEPTH: Kubernetes objects nest about 10 deep (a List of EndpointSlices
  is 6); CRD schemas, the deepest objects kubectl users write, stay under 50.
- MAX_ALIAS_NODES: YAML aliases re-use a node; expanded, a 1 kB "billion laughs"
  document is a billion nodes. Counting each alias as the nodes it stands for,
  a stream may reach this many; kubectl-made manifests use no aliases at all.
- MAX_NUMBER_CHARS: Python refuses to read integers of more than 4,300 digits
  (CVE-2020-10735), and a hex one of a million digits is a megabyte integer;
  no Kubernetes field holds a number longer than 20 digits.
"""

from __future__ import annotations

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 100
MAX_ALIAS_NODES = 1_000_000
MAX_NUMBER_CHARS = 100


def too_deep() -> str:
    return f"nested deeper than {MAX_DEPTH} levels"


def number_too_long(text: str) -> str:
    return f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS} are read)"
