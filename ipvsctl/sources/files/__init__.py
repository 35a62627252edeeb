"""Manifest files (`apply -f`): YAML and JSON streams into `model.inputs.Inputs`.

- `manifests`: files, directories and stdin read as `kubectl apply -f` reads them;
- `yaml_documents`: a YAML stream into its documents, fast for manifests, else PyYAML;
- `yaml_lines`: one line of block YAML into the events it holds;
- `yaml_scalars`: what a plain YAML scalar means, as PyYAML's SafeLoader decides it.
"""

from ipvsctl.sources.files.manifests import FileRef, SourceError, read_manifests

__all__ = ["FileRef", "SourceError", "read_manifests"]
