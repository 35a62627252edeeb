"""NftTable against a fake `nft` on PATH: the command lines it runs, what it sends, and the
one-line errors it gives when nft fails, is missing or does not answer."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ipvsctl.netfilter import (
    ABSENT,
    NetfilterError,
    NetfilterOptions,
    NftTable,
    Support,
    create_transaction,
    static_ruleset,
)
from tests.netfilter.builders import nft_listing

RULESET = static_ruleset(NetfilterOptions())

ERROR_OUTPUT = """\
/dev/stdin:2:35-51: Error: Could not process rule: No such file or directory
delete element inet ipvsctl service-ips-v4 { 10.96.0.99 }
                                  ^^^^^^^^^^^^^^^^^
"""


class FakeNft:
    """A `nft` script that logs its arguments, input and locale, and answers as told."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.script = directory / "nft"

    def answer(self, stdout: str = "", stderr: str = "", status: int = 0, sleep: float = 0) -> None:
        (self.directory / "out").write_text(stdout)
        (self.directory / "err").write_text(stderr)
        d = self.directory
        pause = f"exec sleep {sleep}\n" if sleep else ""
        self.script.write_text(
            "#!/bin/sh\n"
            f'printf "%s\\n" "$*" >> "{d}/calls"\n'
            f'cat > "{d}/input"\n'
            f'printf "%s\\n" "$LC_ALL" > "{d}/locale"\n'
            f"{pause}"
            f'cat "{d}/out"; cat "{d}/err" >&2\n'
            f"exit {status}\n"
        )
        self.script.chmod(self.script.stat().st_mode | stat.S_IXUSR)

    @property
    def calls(self) -> list[str]:
        path = self.directory / "calls"
        return path.read_text().splitlines() if path.exists() else []

    @property
    def input(self) -> str:
        return (self.directory / "input").read_text()


@pytest.fixture
def nft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeNft:
    fake = FakeNft(tmp_path)
    fake.answer()
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake


def test_read_lists_our_table_as_json(nft: FakeNft) -> None:
    nft.answer(stdout=nft_listing(RULESET))
    state = NftTable().read()
    assert nft.calls == ["-j -p list table inet ipvsctl"]
    assert state.exists and state.drift(RULESET) == ()


def test_read_of_a_missing_table_is_absent(nft: FakeNft) -> None:
    nft.answer(
        stderr="Error: No such file or directory\nlist table inet ipvsctl\n"
        "                 ^^^^^^^\n",
        status=1,
    )
    assert NftTable().read() == ABSENT


def test_nft_runs_in_the_c_locale_so_its_errors_read_the_same_everywhere(nft: FakeNft) -> None:
    NftTable().apply("add table inet ipvsctl\n")
    assert (nft.directory / "locale").read_text() == "C\n"


def test_read_that_fails_otherwise_is_one_line_naming_the_command(nft: FakeNft) -> None:
    nft.answer(
        stderr="netlink: Error: cache initialization failed: Operation not permitted\n",
        status=1,
    )
    with pytest.raises(NetfilterError) as caught:
        NftTable().read()
    assert str(caught.value) == (
        "nft -j -p list table inet ipvsctl:"
        " netlink: Error: cache initialization failed: Operation not permitted"
    )


def test_read_of_output_that_is_no_listing_is_an_error(nft: FakeNft) -> None:
    nft.answer(stdout="table inet ipvsctl {\n}\n")
    with pytest.raises(
        NetfilterError, match=r"^nft -j -p list table inet ipvsctl: not an nft JSON"
    ):
        NftTable().read()


def test_apply_sends_the_transaction_to_one_nft_run(nft: FakeNft) -> None:
    text = create_transaction(RULESET, ())
    NftTable().apply(text)
    assert nft.calls == ["-f -"]
    assert nft.input == text


def test_an_empty_transaction_runs_nothing(nft: FakeNft) -> None:
    NftTable().apply("")
    assert nft.calls == []


def test_a_refused_transaction_names_the_error_and_the_line(nft: FakeNft) -> None:
    nft.answer(stderr=ERROR_OUTPUT, status=1)
    with pytest.raises(NetfilterError) as caught:
        NftTable().apply("delete element inet ipvsctl service-ips-v4 { 10.96.0.99 }\n")
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "nft -f -: /dev/stdin:2:35-51: Error: Could not process rule: No such file or directory"
        " (in: delete element inet ipvsctl service-ips-v4 { 10.96.0.99 })"
    )


def test_a_failure_with_no_message_still_says_so(nft: FakeNft) -> None:
    nft.answer(status=1)
    with pytest.raises(NetfilterError, match=r"^nft -f -: failed with no message$"):
        NftTable().apply("add table inet ipvsctl\n")


def test_delete_removes_only_our_table_whether_or_not_it_exists(nft: FakeNft) -> None:
    NftTable().delete()
    assert nft.calls == ["-f -"]
    assert nft.input == "add table inet ipvsctl\ndelete table inet ipvsctl\n"


def test_a_slow_nft_is_given_up_on(nft: FakeNft) -> None:
    nft.answer(sleep=5)
    with pytest.raises(NetfilterError) as caught:
        NftTable(timeout=0.3).apply("add table inet ipvsctl\n")
    assert str(caught.value) == (
        "nft -f -: no answer in 0.3 s (the table may or may not have changed)"
    )


def test_a_missing_nft_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nft there
    with pytest.raises(NetfilterError, match=r"^nft -f -: nft not found \(install nftables\)$"):
        NftTable().apply("add table inet ipvsctl\n")


def test_support_is_probed_with_the_whole_table_in_a_check_run(nft: FakeNft) -> None:
    assert NftTable().supported() == Support(True)
    assert nft.calls == ["--check -f -"]
    assert nft.input == create_transaction(RULESET, ())


def test_a_kernel_without_nftables_for_ip_traffic_is_not_supported(nft: FakeNft) -> None:
    # As the User-Mode Linux lab kernel answers: it has nf_tables for bridges only.
    # Every later line fails too (its table is not there): only the first error is told.
    nft.answer(
        stderr="/dev/stdin:1:1-22: Error: Could not process rule:"
        " Operation not supported\nadd table inet ipvsctl\n"
        "^^^^^^^^^^^^^^^^^^^^^^\n"
        "/dev/stdin:2:15-21: Error: Could not process rule: No such file or directory\n"
        "add chain inet ipvsctl services\n"
        "              ^^^^^^^\n",
        status=1,
    )
    support = NftTable().supported()
    assert not support.ok
    assert support.reason == (
        "nft --check -f -: /dev/stdin:1:1-22: Error: Could not process rule:"
        " Operation not supported (in: add table inet ipvsctl)"
    )


def test_no_nft_is_no_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert NftTable().supported() == Support(
        False, "nft --check -f -: nft not found (install nftables)"
    )
