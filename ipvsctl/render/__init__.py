"""Render (pure): a plan as text, for `--dry-run`, `diff` and every `apply`.

- `plan_lines`: a plan as lines that read like the commands doing it
  (ipvsadm, iproute2, sysctl);
- `plan_json`: the same lines as JSON objects (`-o json`).

This file imports nothing, so the text lines never load the JSON schema.
"""
