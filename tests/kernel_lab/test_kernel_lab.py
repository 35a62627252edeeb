"""The kernel lab's pure parts, and its boot loop driven by a fake kernel.

Nothing here boots UML or touches apt: these run on any host.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration.kernel_lab import apt_client, locations, provision, runner
from integration.kernel_lab.apt_sources import (
    SID_SUITE,
    SourceEntry,
    debian_archive_uri,
    parse_deb822,
    parse_one_line,
    suite_sources,
    system_archive_uri,
)
from integration.kernel_lab.cli import command_argv
from integration.kernel_lab.errors import LabError
from integration.kernel_lab.guest_env import guest_environment, with_system_path
from integration.kernel_lab.guest_process import GuestFiles
from integration.kernel_lab.host_kernel import CAP_SYS_ADMIN, has_cap_net_admin, has_capability
from integration.kernel_lab.init_script import GuestRun, render_init_script
from integration.kernel_lab.junit_tally import Tally, summary_line, tally_report, tally_run
from integration.kernel_lab.modules import modules_to_load, persistence_engines, scheduler_name
from integration.kernel_lab.netns import (
    in_initial_network_namespace,
    in_own_network_namespace,
    kernel_wide_skip_reason,
)
from integration.kernel_lab.runner import choose_target
from integration.kernel_lab.suite_run import plan_suites, suites
from integration.kernel_lab.uml_boot import Boot, boot_and_follow, boot_command

MIRROR = "http://mirror.example/debian"
REPO = Path(__file__).resolve().parents[2]

# --- apt sources -------------------------------------------------------------

DEBIAN_12_SOURCES = f"""\
Types: deb
# a comment line inside the stanza
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_main_archive_is_the_one_serving_a_bare_release() -> None:
    assert debian_archive_uri(parse_deb822(DEBIAN_12_SOURCES)) == MIRROR


def test_deb822_security_archive_alone_is_no_debian_archive() -> None:
    security_only = DEBIAN_12_SOURCES.split("\n\n", 1)[1]
    assert debian_archive_uri(parse_deb822(security_only)) is None


def test_deb822_disabled_stanzas_and_source_types_are_ignored() -> None:
    text = (
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        f"Types: deb\nURIs: {MIRROR}/\nSuites: bookworm\n"
    )
    assert debian_archive_uri(parse_deb822(text)) == MIRROR


def test_a_debian_archive_wins_over_third_party_ones_listed_first() -> None:
    entries = [
        SourceEntry(("deb",), ("https://vendor.example/apt",), ("stable",)),
        SourceEntry(("deb",), (MIRROR,), ("bookworm",)),
    ]
    assert debian_archive_uri(entries) == MIRROR


def test_deb822_continuation_lines_extend_a_field() -> None:
    (entry,) = parse_deb822(f"Types: deb\nURIs:\n {MIRROR}\nSuites: trixie\n  trixie-updates\n")
    assert entry == SourceEntry(("deb",), (MIRROR,), ("trixie", "trixie-updates"))


def test_one_line_sources_with_options_are_parsed() -> None:
    text = f"# comment\ndeb [arch=amd64 signed-by=/k.gpg] {MIRROR} bookworm main\n"
    assert debian_archive_uri(parse_one_line(text)) == MIRROR


def test_system_archive_uri_reads_the_sources_file(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(DEBIAN_12_SOURCES)
    assert system_archive_uri(sources, tmp_path / "absent.list") == MIRROR


def test_system_archive_uri_without_sources_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no Debian archive"):
        system_archive_uri(tmp_path / "a.sources", tmp_path / "b.list")


def test_suite_sources_names_the_mirror_suite_and_the_keyring() -> None:
    text = suite_sources(MIRROR, SID_SUITE, Path("/k.gpg"))
    (entry,) = parse_deb822(text)
    assert entry == SourceEntry(("deb",), (MIRROR,), ("sid",))
    assert "Signed-By: /k.gpg\n" in text
    assert "trusted" not in text


# --- apt client --------------------------------------------------------------


def test_private_apt_keeps_every_written_path_in_its_state_dir(tmp_path: Path) -> None:
    options = apt_client.PrivateApt(tmp_path, "amd64").options()
    assert options[::2] == ["-o"] * (len(options) // 2)
    pairs = dict(setting.split("=", 1) for setting in options[1::2])
    assert pairs["Dir::Etc::sourcelist"] == "/dev/null"
    for key in (
        "Dir::Etc::sourceparts",
        "Dir::State::lists",
        "Dir::Cache",
        "Dir::Cache::archives",
        "Dir::Etc::preferencesparts",
    ):
        assert Path(pairs[key]).is_relative_to(tmp_path), key


@pytest.mark.parametrize(
    "output",
    [
        "W: GPG error: x sid InRelease: The following signatures couldn't be verified because "
        "the public key is not available: NO_PUBKEY 6ED0E7B82643E131",
        "E: The repository 'x sid InRelease' is not signed.",
        "W: GPG error: x: The following signatures were invalid: EXPKEYSIG 123",
    ],
)
def test_signature_failures_are_recognised(output: str) -> None:
    assert apt_client.looks_like_signature_failure(output)


def test_network_failures_are_not_signature_failures() -> None:
    output = "E: Failed to fetch x/InRelease  Could not resolve 'mirror.example'"
    assert not apt_client.looks_like_signature_failure(output)


# --- init script -------------------------------------------------------------


def guest_run(**overrides: object) -> GuestRun:
    fields: dict[str, object] = {
        "argv": ("python", "-m", "pytest", "-k", "a b"),
        "cwd": Path("/srv/repo"),
        "env": (("HOME", "/root"), ("PATH", "/usr/bin")),
        "modules": ("ip_vs", "ip_vs_rr", "dummy"),
        "modules_dir": Path("/cache/uml/usr/lib/uml/modules/7.2.7"),
        "kernel_version": "7.2.7",
        "output": Path("/cache/runs/r/output"),
        "status": Path("/cache/runs/r/status"),
    }
    fields.update(overrides)
    return GuestRun(**fields)  # type: ignore[arg-type]


def test_init_script_is_valid_sh() -> None:
    script = render_init_script(guest_run())
    assert script.startswith("#!/bin/sh\n")
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)


def test_init_script_prepares_the_kernel_in_order() -> None:
    script = render_init_script(guest_run())
    steps = [
        "mount -t proc proc /proc",
        "mount -t sysfs sysfs /sys",
        "mount -t tmpfs tmpfs /run",
        "mount -t tmpfs tmpfs /tmp",
        "mount -t tmpfs tmpfs /lib/modules",
        "ln -s /cache/uml/usr/lib/uml/modules/7.2.7 /lib/modules/7.2.7",
        "ip link set lo up",
        "modprobe -a ip_vs ip_vs_rr dummy",
        "cd /srv/repo",
        "exec python -m pytest -k 'a b'",
        "finish $?",
    ]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions)


def test_init_script_without_modules_runs_no_modprobe() -> None:
    assert "modprobe" not in render_init_script(guest_run(modules=()))


def test_init_script_reports_status_by_rename_and_powers_off() -> None:
    script = render_init_script(guest_run())
    assert 'echo "$1" >"$status.tmp" && mv "$status.tmp" "$status"' in script
    assert "poweroff -f" in script
    assert "status=/cache/runs/r/status" in script


def test_init_script_sends_setup_and_command_output_to_the_output_file() -> None:
    script = render_init_script(guest_run())
    assert script.count('>>"$out" 2>&1') == 2
    assert "out=/cache/runs/r/output" in script


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0")))
def test_exported_values_reach_the_command_unchanged(value: str) -> None:
    script = render_init_script(guest_run(env=(("PROBE", value),)))
    # Not splitlines(): Python splits on characters (\x1e, \x85...) that sh does not.
    exports = script.split("\n(\n", 1)[1].split("\nexec ", 1)[0]
    shell = exports + '\nprintf %s "$PROBE"\n'

    result = subprocess.run(["sh", "-c", shell], capture_output=True, check=True)
    assert result.stdout == value.encode("utf-8", "surrogateescape")


# --- guest environment -------------------------------------------------------


def test_guest_environment_drops_host_sessions_and_keeps_the_rest() -> None:
    caller = {
        "HOME": "/home/u",
        "VIRTUAL_ENV": "/v",
        "SSH_AUTH_SOCK": "/run/s",
        "XDG_RUNTIME_DIR": "/run/user/0",
        "PWD": "/x",
        "BASH_FUNC_f%%": "() {}",
    }
    env = guest_environment(caller, {})
    assert env["HOME"] == "/home/u"
    assert env["VIRTUAL_ENV"] == "/v"
    assert not {"SSH_AUTH_SOCK", "XDG_RUNTIME_DIR", "PWD", "BASH_FUNC_f%%"} & env.keys()


def test_guest_environment_drops_temp_dirs_the_guest_hides() -> None:
    env = guest_environment({"TMPDIR": "/tmp/x", "TMP": "/var/tmp", "TEMP": "/run/t"}, {})
    assert "TMPDIR" not in env and "TEMP" not in env
    assert env["TMP"] == "/var/tmp"


def test_guest_environment_is_unbuffered_and_extra_wins() -> None:
    env = guest_environment({"IPVSCTL_LAB": "uml"}, {"IPVSCTL_LAB": "host"})
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["IPVSCTL_LAB"] == "host"


def test_system_path_is_appended_once() -> None:
    path = with_system_path("/venv/bin:/usr/bin")
    assert path.startswith("/venv/bin:/usr/bin:")
    assert path.split(":").count("/usr/bin") == 1
    assert "/usr/sbin" in path.split(":")


# --- booting -----------------------------------------------------------------


def make_boot(tmp_path: Path, kernel_script: str) -> Boot:
    kernel = tmp_path / "fake-linux"
    kernel.write_text("#!/bin/sh\n" + kernel_script)
    kernel.chmod(0o755)
    return Boot(
        kernel=kernel,
        init=tmp_path / "init",
        files=GuestFiles(
            tmp_path, tmp_path / "output", tmp_path / "status", tmp_path / "kernel.log"
        ),
    )


def test_boot_command_boots_hostfs_root_with_seccomp_and_a_quiet_console(tmp_path: Path) -> None:
    argv = boot_command(make_boot(tmp_path, ""))
    for arg in (
        "mem=1G",
        "seccomp=on",
        "root=/dev/root",
        "rootfstype=hostfs",
        "rootflags=/",
        f"init={tmp_path / 'init'}",
        "con=null",
        "con0=null,fd:2",
    ):
        assert arg in argv


def test_boot_command_refuses_paths_with_spaces(tmp_path: Path) -> None:
    spaced = tmp_path / "a b"
    spaced.mkdir()
    with pytest.raises(LabError, match="spaces"):
        boot_command(make_boot(spaced, ""))


def test_guest_output_is_streamed_and_its_status_returned(tmp_path: Path) -> None:
    fake = "echo booting >&2; echo one >>output; sleep 0.3; echo two >>output; echo 7 >status\n"
    sink = io.BytesIO()
    assert boot_and_follow(make_boot(tmp_path, fake), sink, timeout=30) == 7
    assert sink.getvalue() == b"one\ntwo\n"


def test_kernel_chatter_stays_out_of_the_output(tmp_path: Path) -> None:
    sink = io.BytesIO()
    boot_and_follow(make_boot(tmp_path, "echo chatter; echo 0 >status\n"), sink, timeout=30)
    assert sink.getvalue() == b""
    assert "chatter" in (tmp_path / "kernel.log").read_text()


def test_guest_without_status_is_a_lab_error_showing_the_kernel_log(tmp_path: Path) -> None:
    fake = "echo 'Kernel panic - not syncing' >&2; exit 1\n"
    with pytest.raises(LabError, match="without reporting an exit status") as caught:
        boot_and_follow(make_boot(tmp_path, fake), io.BytesIO(), timeout=30)
    assert "Kernel panic" in str(caught.value)


def test_guest_past_its_timeout_is_killed(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(LabError, match="still running"):
        boot_and_follow(make_boot(tmp_path, "exec sleep 30\n"), io.BytesIO(), timeout=0.5)
    assert time.monotonic() - started < 10


# --- tallies and the suite runner --------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites>
<testsuite name="pytest" errors="1" failures="1" skipped="1" tests="6" time="0.1"/>
</testsuites>"""


def test_junit_errors_count_as_failures() -> None:
    assert tally_report(JUNIT) == Tally(passed=3, failed=2, skipped=1)


def test_a_failed_run_without_a_report_counts_one_failure(tmp_path: Path) -> None:
    assert tally_run(tmp_path / "missing.xml", exit_code=125) == Tally(failed=1)


def test_no_tests_collected_counts_as_a_failure(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite tests="0" failures="0" errors="0" skipped="0"/></testsuites>'
    )
    assert tally_run(report, exit_code=5) == Tally(failed=1)


def test_a_passing_run_is_counted_from_its_report(tmp_path: Path) -> None:
    report = tmp_path / "r.xml"
    report.write_text(JUNIT.replace('errors="1" failures="1"', 'errors="0" failures="0"'))
    assert tally_run(report, exit_code=0) == Tally(passed=5, skipped=1)


def test_summary_line_mentions_skips_only_when_any() -> None:
    assert summary_line(Tally(3, 0)) == "3 passed, 0 failed"
    assert summary_line(Tally(3, 1) + Tally(2, 0, 4)) == "5 passed, 1 failed, 4 skipped"


def test_suite_flags_pick_halves_and_the_rest_goes_to_pytest() -> None:
    plan = plan_suites(["-x", "--integration-only", "-k", "lab"])
    assert (plan.unit, plan.integration, plan.pytest_args) == (False, True, ("-x", "-k", "lab"))
    assert plan_suites([]).unit and plan_suites([]).integration
    assert not plan_suites(["--unit-only"]).integration


def test_both_suite_flags_at_once_are_refused() -> None:
    with pytest.raises(SystemExit):
        plan_suites(["--unit-only", "--integration-only"])


def test_each_suite_runs_its_own_test_tree() -> None:
    runs = {suite.name: suite for suite in suites(plan_suites([]), "uml")}
    assert runs["unit"].paths == ("tests",)
    # The netfilter tests sit inside the integration tests, but run in QEMU's kernel only.
    integration = ("integration/tests", "--ignore=integration/tests/netfilter")
    assert (runs["integration"].paths, runs["integration"].target) == (integration, "uml")
    netfilter = ("integration/tests/netfilter",)
    assert (runs["netfilter"].paths, runs["netfilter"].target) == (netfilter, "qemu")
    for suite in runs.values():
        for path in suite.paths:
            assert (REPO / path.removeprefix("--ignore=")).is_dir(), path


# --- where to run ------------------------------------------------------------


def never_probed() -> bool:
    raise AssertionError("the host was probed although the choice was forced")


@pytest.mark.parametrize("forced", ["uml", "host", "UML"])
def test_forced_target_skips_the_probe(forced: str) -> None:
    assert choose_target({"IPVSCTL_LAB": forced}, never_probed) == forced.lower()


def test_unknown_forced_target_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="IPVSCTL_LAB"):
        choose_target({"IPVSCTL_LAB": "qemu"}, never_probed)


def test_host_with_ipvs_is_preferred_over_uml() -> None:
    assert choose_target({}, lambda: True) == "host"
    assert choose_target({}, lambda: False) == "uml"


def test_cap_net_admin_is_read_from_the_effective_set() -> None:
    assert has_cap_net_admin("CapPrm:\t0\nCapEff:\t0000000000001000\n")
    assert not has_cap_net_admin("CapEff:\t000001ffffffefff\n")
    assert not has_cap_net_admin("")


def test_cap_sys_admin_is_read_from_the_effective_set() -> None:
    assert has_capability("CapEff:\t0000000000200000\n", CAP_SYS_ADMIN)
    assert not has_capability("CapEff:\t0000000000001000\n", CAP_SYS_ADMIN)


# --- a network namespace of the run's own ------------------------------------


def test_every_run_enters_a_new_network_and_mount_namespace() -> None:
    argv = in_own_network_namespace(["pytest", "-k", "a b"])
    assert argv[: argv.index("--")] == ["unshare", "--net", "--mount", "--propagation", "private"]
    assert argv[-3:] == ["pytest", "-k", "a b"]


def test_the_namespace_gets_lo_up_its_own_sysfs_and_run_then_the_command(
    tmp_path: Path,
) -> None:
    # Run the script unshare would run, with ip, mount and mkdir logged instead of run.
    log = tmp_path / "log"
    for tool in ("ip", "mount", "mkdir"):
        stub = tmp_path / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >>{log}\n')
        stub.chmod(0o755)
    argv = in_own_network_namespace(["printf", "%s|", "a b", "c"])
    script = argv[argv.index("--") + 1 :]
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(script, env=env, capture_output=True, text=True, check=True)
    assert done.stdout == "a b|c|"
    assert log.read_text().splitlines() == [
        "ip link set lo up",
        "mount -n -t sysfs sysfs /sys",
        "mount -n -t tmpfs tmpfs /run",
        "mkdir /run/netns",
    ]


def test_a_failed_namespace_step_stops_before_the_command(tmp_path: Path) -> None:
    (tmp_path / "ip").write_text("#!/bin/sh\nexit 2\n")
    (tmp_path / "ip").chmod(0o755)
    argv = in_own_network_namespace(["echo", "ran"])
    script = argv[argv.index("--") + 1 :]
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(script, env=env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (2, "")


def test_run_in_kernel_hands_the_host_only_namespaced_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[list[str]] = []

    def run_on_host(argv: list[str], **kwargs: object) -> int:
        seen.append(list(argv))
        return 0

    monkeypatch.setattr(runner, "run_on_host", run_on_host)
    assert runner.run_in_kernel(["ipvsadm", "-C"], cwd=tmp_path, target="host") == 0
    assert seen == [in_own_network_namespace(["ipvsadm", "-C"])]


def test_sharing_pid_1s_namespace_is_detected_by_inode(tmp_path: Path) -> None:
    ours, other = tmp_path / "net", tmp_path / "other"
    ours.touch()
    other.touch()
    (tmp_path / "init").symlink_to(ours)
    assert in_initial_network_namespace(ours, tmp_path / "init")
    assert not in_initial_network_namespace(ours, other)


def test_an_unreadable_namespace_counts_as_the_hosts(tmp_path: Path) -> None:
    assert in_initial_network_namespace(tmp_path / "net", tmp_path / "missing")


@pytest.mark.parametrize(
    "environ",
    [{"IPVSCTL_LAB_GUEST": "uml"}, {"IPVSCTL_TEST_KERNEL_WIDE": "1"}],
)
def test_kernel_wide_tests_run_in_the_uml_guest_or_when_asked(environ: dict[str, str]) -> None:
    assert kernel_wide_skip_reason(environ) is None


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"IPVSCTL_LAB_GUEST": "qemu"},
        {"IPVSCTL_TEST_KERNEL_WIDE": "yes"},
        {"IPVSCTL_LAB": "uml"},
    ],
)
def test_kernel_wide_tests_on_a_host_are_skipped_saying_how_to_run_them(
    environ: dict[str, str],
) -> None:
    reason = kernel_wide_skip_reason(environ)
    assert reason is not None
    assert "IPVSCTL_TEST_KERNEL_WIDE=1" in reason
    assert "UML" in reason


# --- command line ------------------------------------------------------------


def test_command_after_double_dash_is_taken_verbatim() -> None:
    assert command_argv(["--", "ipvsadm", "-Ln"]) == ["ipvsadm", "-Ln"]
    assert command_argv(["echo", "a b"]) == ["echo", "a b"]


def test_single_word_with_a_space_is_a_shell_command_line() -> None:
    line = "ip link add d0 type dummy && ip link show d0"
    assert command_argv(["--", line]) == ["sh", "-c", line]


# --- modules -----------------------------------------------------------------


def test_persistence_engines_are_found_in_the_module_tree(tmp_path: Path) -> None:
    ipvs = tmp_path / "kernel/net/netfilter/ipvs"
    ipvs.mkdir(parents=True)
    for name in ("ip_vs_pe_sip.ko.xz", "ip_vs_rr.ko", "ip_vs_ftp.ko"):
        (ipvs / name).touch()
    assert persistence_engines(tmp_path) == ("ip_vs_pe_sip",)


def test_modules_to_load_start_with_ipvs_and_include_link_types() -> None:
    modules = modules_to_load(("ip_vs_pe_sip",))
    assert modules[0] == "ip_vs"
    assert {"dummy", "veth", "ip_vs_mh", "ip_vs_pe_sip"} <= set(modules)
    assert scheduler_name("ip_vs_wrr") == "wrr"


# --- cache locations and the provisioned lab ---------------------------------


def test_cache_dir_follows_the_override_then_xdg_then_home() -> None:
    assert locations.lab_cache_dir({"IPVSCTL_LAB_CACHE": "/c"}) == Path("/c")
    xdg = locations.lab_cache_dir({"XDG_CACHE_HOME": "/x"})
    assert xdg == Path("/x/ipvsctl/kernel-lab")
    assert locations.lab_cache_dir({}).parts[-3:] == (".cache", "ipvsctl", "kernel-lab")


def test_run_is_hidden_in_the_guest_and_tmp_is_bound_back() -> None:
    assert locations.hidden_in_guest(Path("/run/x"))
    assert not locations.hidden_in_guest(Path("/tmp/x"))
    assert not locations.hidden_in_guest(Path("/var/tmp"))
    assert locations.host_tmp_dir(Path("/tmp/ci-clone/.venv/bin")) == Path("/tmp/ci-clone")
    assert locations.host_tmp_dir(Path("/var/tmp/x")) is None
    assert locations.host_tmp_dir(Path("/tmp")) is None


def test_init_binds_host_tmp_dirs_back_over_the_guest_tmpfs() -> None:
    from integration.kernel_lab.init_script import _private_tmp

    assert _private_tmp(()) == ["mount -t tmpfs tmpfs /tmp"]
    lines = _private_tmp((Path("/tmp/ci-clone"),))
    assert lines.index("mount --bind /tmp /run/host-tmp") < lines.index("mount -t tmpfs tmpfs /tmp")
    assert lines[-1] == "mount --bind /run/host-tmp/ci-clone /tmp/ci-clone"


def test_scratch_dirs_are_removed_and_abandoned_ones_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPVSCTL_LAB_CACHE", str(tmp_path))
    abandoned = tmp_path / "runs" / "run-dead"
    abandoned.mkdir(parents=True)
    (abandoned / locations.IN_USE).touch()
    with locations.scratch_dir("run-") as scratch:
        assert scratch.is_dir()
        assert not abandoned.exists()
        with locations.scratch_dir("run-") as other:
            assert scratch.exists(), "a live scratch dir was swept"
            assert other != scratch
    assert not scratch.exists()


def test_the_uml_guest_never_sweeps_the_hosts_run_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host's lock on its live run dir does not reach the guest through hostfs.
    monkeypatch.setenv("IPVSCTL_LAB_CACHE", str(tmp_path))
    monkeypatch.setenv("IPVSCTL_LAB_GUEST", "uml")
    hosts = tmp_path / "runs" / "run-live-on-the-host"
    hosts.mkdir(parents=True)
    (hosts / locations.IN_USE).touch()
    with locations.scratch_dir("suites-") as scratch:
        assert scratch.is_dir()
    assert hosts.exists()
    assert not scratch.exists()


def write_lab(lab_root: Path, **stamp: object) -> None:
    root = lab_root
    (root / provision.KERNEL).parent.mkdir(parents=True)
    (root / provision.KERNEL).touch()
    (root / provision.MODULES_ROOT / "7.2.7").mkdir(parents=True)
    fields = {
        "format": provision.LAB_FORMAT,
        "root": str(root),
        "kernel_version": "7.2.7",
        "packages": [["user-mode-linux", "7.2um1"]],
        "keyring": "k",
    }
    fields.update(stamp)
    (root / provision.STAMP).write_text(json.dumps(fields))


def test_a_complete_lab_is_reused_without_provisioning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lab(tmp_path / "uml")

    def no_build(*args: object) -> provision.Lab:
        raise AssertionError("rebuilt a complete lab")

    monkeypatch.setattr(provision, "_build", no_build)
    lab = provision.ensure_lab(tmp_path)
    assert lab.kernel == tmp_path / "uml" / provision.KERNEL
    assert lab.modules_dir.name == "7.2.7"


@pytest.mark.parametrize("stamp", [{"format": 0}, {"root": "/elsewhere"}])
def test_a_stale_or_moved_lab_is_not_reused(tmp_path: Path, stamp: dict[str, object]) -> None:
    write_lab(tmp_path, **stamp)
    assert provision.load_lab(tmp_path) is None


def test_a_lab_without_its_stamp_is_not_reused(tmp_path: Path) -> None:
    write_lab(tmp_path)
    os.remove(tmp_path / provision.STAMP)
    assert provision.load_lab(tmp_path) is None
