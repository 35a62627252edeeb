"""read_manifests: files, directories and stdin into Inputs, as `kubectl apply -f` reads them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from ipvsctl.model import AF_INET, AF_INET6, ForwardMethod, Protocol, ServiceFlag
from ipvsctl.model.desired import TranslateConfig
from ipvsctl.sources import FileRef, SourceError, read_manifests
from ipvsctl.sources.files.bounded_yaml import BoundedLoader
from ipvsctl.translate import translate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80}]
"""
SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.244.1.5]}]
"""
CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: b}
"""
NO_STDIN = io.StringIO("")


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text)
    return str(path)


def test_a_multi_document_file(tmp_path: Path) -> None:
    inputs = read_manifests([write(tmp_path, "m.yaml", f"{SERVICE}---\n{SLICE}---\n")], NO_STDIN)
    assert [s.name for s in inputs.services] == ["web"]
    assert [s.name for s in inputs.slices] == ["web-1"]
    assert (inputs.errors, inputs.notes) == ((), ())


def test_stdin_and_several_files(tmp_path: Path) -> None:
    inputs = read_manifests(["-", write(tmp_path, "s.yaml", SLICE)], io.StringIO(SERVICE))
    assert (len(inputs.services), len(inputs.slices)) == (1, 1)


def test_stdin_twice_cannot_be_read() -> None:
    with pytest.raises(SourceError, match="stdin can be read only once"):
        read_manifests(["-", "-"], io.StringIO(SERVICE))


def test_a_v1_list_is_opened() -> None:
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [yaml.safe_load(SERVICE), yaml.safe_load(SLICE)],
    }
    inputs = read_manifests(["-"], io.StringIO(yaml.safe_dump(listed)))
    assert (len(inputs.services), len(inputs.slices), inputs.errors) == (1, 1, ())


def test_items_of_a_typed_list_take_its_kind() -> None:
    item = yaml.safe_load(SERVICE)
    del item["kind"], item["apiVersion"]
    listed = {"apiVersion": "v1", "kind": "ServiceList", "items": [item]}
    inputs = read_manifests(["-"], io.StringIO(json.dumps(listed)))
    assert [s.name for s in inputs.services] == ["web"]


def test_a_directory_reads_its_manifests_sorted_and_not_below(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", SLICE)
    write(tmp_path, "a.json", json.dumps(yaml.safe_load(SERVICE), indent="\t"))
    write(tmp_path, "c.yml", CONFIG_MAP)
    write(tmp_path, "notes.txt", "not yaml: [")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "d.yaml", "kind: [")
    inputs = read_manifests([str(tmp_path)], NO_STDIN)
    assert (len(inputs.services), len(inputs.slices), inputs.errors) == (1, 1, ())
    assert inputs.notes == (
        "ConfigMap default/x: ignored (ipvsctl reads Services and EndpointSlices)",
    )


def test_other_kinds_and_api_versions_are_ignored_with_a_note() -> None:
    beta = SLICE.replace("discovery.k8s.io/v1", "discovery.k8s.io/v1beta1")
    inputs = read_manifests(["-"], io.StringIO(f"{CONFIG_MAP}---\n{beta}"))
    assert inputs.notes == (
        "ConfigMap default/x: ignored (ipvsctl reads Services and EndpointSlices)",
        "EndpointSlice shop/web-1: ignored (apiVersion discovery.k8s.io/v1beta1; "
        "ipvsctl reads discovery.k8s.io/v1)",
    )
    assert (inputs.services, inputs.slices, inputs.errors) == ((), (), ())


def test_unparsable_yaml_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: [x}\n")
    (error,) = read_manifests([path], NO_STDIN).errors
    assert isinstance(error.ref, FileRef)
    assert str(error).startswith(f"{path}: line 3: ")
    assert "\n" not in str(error)


def test_unparsable_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{\n  "kind": "Service",\n  oops\n}')
    (error,) = read_manifests([path], NO_STDIN).errors
    assert str(error) == f"{path}: line 3: Expecting property name enclosed in double quotes"


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.yaml")
    (error,) = read_manifests([path], NO_STDIN).errors
    assert str(error) == f"{path}: file: cannot read: No such file or directory"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "stdin: document: not a mapping: not an object"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "stdin: document: no kind: not an object"),
    ],
)
def test_a_document_that_is_no_object_is_an_error(text: str, message: str) -> None:
    (error,) = read_manifests(["-"], io.StringIO(text)).errors
    assert str(error) == message


def test_empty_documents_are_skipped() -> None:
    inputs = read_manifests(["-"], io.StringIO(f"---\n---\n{SERVICE}---\n"))
    assert (len(inputs.services), inputs.errors) == (1, ())


def test_a_service_defined_twice_is_an_error_and_the_first_stays(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", SERVICE)
    second = write(tmp_path, "b.yaml", SERVICE.replace("10.96.0.20", "10.96.0.21"))
    inputs = read_manifests([first, second], NO_STDIN)
    assert [s.cluster_ips for s in inputs.services] == [("10.96.0.20",)]
    assert [str(e) for e in inputs.errors] == [
        f"Service shop/web: metadata.name: defined in {first} and again in {second}"
    ]


def test_a_slice_defined_twice_in_one_file_is_an_error() -> None:
    inputs = read_manifests(["-"], io.StringIO(f"{SLICE}---\n{SLICE}"))
    assert [str(e) for e in inputs.errors] == [
        "EndpointSlice shop/web-1: metadata.name: defined twice in stdin"
    ]


def test_every_bad_object_is_reported_and_the_good_ones_kept() -> None:
    bad = SERVICE.replace("name: web", "name: bad").replace("port: 80", "port: 70000")
    inputs = read_manifests(["-"], io.StringIO(f"{bad}---\n{SERVICE}"))
    assert [s.name for s in inputs.services] == ["web"]
    assert [str(e) for e in inputs.errors] == [
        "Service shop/bad: spec.ports[0].port: 70000 is not a port (1-65535)"
    ]


def test_libyamls_parser_is_used_when_present() -> None:
    assert yaml.__with_libyaml__
    assert issubclass(BoundedLoader, yaml.cyaml.CParser)


# --- the example a user applies first --------------------------------------------------


def test_the_demo_manifest_reads_cleanly_and_translates() -> None:
    inputs = read_manifests([str(EXAMPLES / "demo.yaml")], NO_STDIN)
    assert (inputs.errors, inputs.notes) == ((), ())
    config = TranslateConfig(node_name="node-1", node_addresses=("192.168.0.10",))
    state = translate(inputs.services, inputs.slices, config)
    assert state.errors == ()
    found = {
        (s.key.family, Protocol(s.key.protocol).name, s.key.address, s.key.port): s
        for s in state.virtual_servers
    }
    assert sorted((a, p, n) for _, p, a, n in found) == [
        ("10.96.0.10", "TCP", 53),
        ("10.96.0.10", "UDP", 53),
        ("10.96.0.20", "TCP", 80),
        ("10.96.0.21", "TCP", 8080),
        ("10.96.0.30", "TCP", 443),
        ("192.168.0.10", "TCP", 30080),
        ("fd00:10:96::30", "TCP", 443),
    ]
    web = found[(AF_INET, "TCP", "10.96.0.20", 80)]
    assert [(r.address, r.port, r.forward) for r in web.real_servers] == [
        ("10.244.1.5", 8080, ForwardMethod.MASQ),
        ("10.244.2.7", 8080, ForwardMethod.MASQ),
        ("10.244.3.9", 8080, ForwardMethod.MASQ),
    ]
    cart = found[(AF_INET, "TCP", "10.96.0.21", 8080)].service
    assert (cart.scheduler, cart.flags) == ("sh", ServiceFlag.SCHED1)
    api6 = found[(AF_INET6, "TCP", "fd00:10:96::30", 443)]
    assert (api6.service.flags, api6.service.timeout) == (ServiceFlag.PERSISTENT, 600)
    assert [r.address for r in api6.real_servers] == ["fd00:10:244:1::20", "fd00:10:244:2::20"]
    assert state.addresses == frozenset(
        {"10.96.0.10", "10.96.0.20", "10.96.0.21", "10.96.0.30", "fd00:10:96::30"}
    )


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        (
            {"ipvsctl.io/scheduler": "fastest"},
            'metadata.annotations["ipvsctl.io/scheduler"]: unknown scheduler "fastest" (known: '
            "rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos)",
        ),
        (
            {"ipvsctl.io/scheduler": "mh", "ipvsctl.io/scheduler-flags": "sh-port"},
            'metadata.annotations["ipvsctl.io/scheduler-flags"]: flag "sh-port" is for the sh '
            "scheduler, not mh",
        ),
        (
            {"ipvsctl.io/forwarding-method": "dsr"},
            'metadata.annotations["ipvsctl.io/forwarding-method"]: unknown method "dsr" '
            "(known: masq, tunnel, route)",
        ),
    ],
)
def test_bad_annotations_in_a_manifest_are_reported_by_translate(
    annotations: dict[str, str], message: str
) -> None:
    obj = yaml.safe_load(SERVICE)
    obj["metadata"]["annotations"] = annotations
    inputs = read_manifests(["-"], io.StringIO(yaml.safe_dump(obj)))
    assert inputs.errors == ()
    state = translate(inputs.services, inputs.slices, TranslateConfig())
    assert [str(error) for error in state.errors] == [f"Service shop/web: {message}"]
    assert state.virtual_servers == ()
