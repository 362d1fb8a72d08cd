"""Every option that names an input file, fed what no real file is: /dev/zero, a FIFO nobody writes, a
directory, a file larger than any limit (sparse) — and YAML/JSON bombs, deep nesting, include
explosions and huge quoted strings. Each run is a child process under a timeout and a memory limit
(tests/acceptance/hostile.py): the old readers grew without bound on /dev/zero and blocked forever on
a FIFO; now each is one line naming the file, exit 3."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.acceptance.hostile import one_error_line, run_bounded
from tests.servers.http_servers import refusing_port

EXAMPLES = Path(__file__).parents[2] / "examples"
RULES = EXAMPLES / "firewall" / "iptables" / "debian-rules.v4"
SECRET = "Hostile-Input-Passphrase-1"
ENV = {"HOSTILE_SHA_OUT": SECRET}

#: what the one error line says for each kind of hostile file
EXPECTED = {"zero": "character device", "fifo": "named pipe", "directory": "directory", "huge": "more than"}


def hostile_file(kind: str, folder: Path) -> str:
    if kind == "zero":
        return "/dev/zero"
    if kind == "fifo":
        path = folder / "input.fifo"
        os.mkfifo(path)
        return str(path)
    if kind == "directory":
        path = folder / "a-directory"
        path.mkdir()
        return str(path)
    path = folder / "huge.input"
    with open(path, "wb") as handle:
        handle.truncate(2 * 1024**3 + 1)      # sparse: larger than every limit, the 1 GB rule files included
    return str(path)


def profile(folder: Path, *, url: str | None = None, extra_shop: str = "",
            signature: str = "passphrase_env: HOSTILE_SHA_OUT") -> str:
    path = folder / "profile.yaml"
    path.write_text(f"""version: 1
shops:
  - name: hostile
    feedback:
      urls: {{accepted: "{url or f'http://127.0.0.1:{refusing_port()}/fb'}"}}
    signature: {{{signature}}}
{extra_shop}""", encoding="utf-8")
    return str(path)


def _check_with(*option: str) -> Callable[[Path, str], list[str]]:
    return lambda folder, x: ["check", "--config", profile(folder), "--lab", "--no-firewall",
                              *(part.replace("X", x) for part in option)]


#: option -> the command line feeding it file X
OPTIONS: dict[str, Callable[[Path, str], list[str]]] = {
    "profile": lambda folder, x: ["check", "--config", x],
    "--platform": _check_with("--platform", "X"),
    "--ranges": _check_with("--ranges", "X"),
    "--state": _check_with("--state", "X"),
    "profile passphrase_file": lambda folder, x: [
        "check", "--lab", "--no-firewall", "--config", profile(folder, signature=f'passphrase_file: "{x}"')],
    "profile firewall layer": lambda folder, x: [
        "check", "--lab", "--config", profile(folder, extra_shop=f'    firewall: [{{type: iptables, file: "{x}"}}]\n')],
    "--ca-bundle": lambda folder, x: ["probe", f"https://127.0.0.1:{refusing_port()}/fb", "--lab",
                                      "--ca-bundle", x, "--passphrase-env", "HOSTILE_SHA_OUT"],
    "probe --passphrase-file": lambda folder, x: ["probe", f"http://127.0.0.1:{refusing_port()}/fb", "--lab",
                                                  "--passphrase-file", x],
    "firewall rule file": lambda folder, x: ["firewall", x],
    "firewall --ipset": lambda folder, x: ["firewall", str(RULES), "--ipset", x],
    "sign -f": lambda folder, x: ["sign", "-f", x, "--passphrase-env", "HOSTILE_SHA_OUT"],
    "sign --passphrase-file": lambda folder, x: ["sign", "orderID=1&STATUS=9", "--passphrase-file", x],
}


@pytest.mark.parametrize("kind", list(EXPECTED))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_input_option_refuses_what_is_not_a_bounded_regular_file(tmp_path: Path, option: str,
                                                                      kind: str) -> None:
    x = hostile_file(kind, tmp_path)
    result = run_bounded(*OPTIONS[option](tmp_path, x), env=ENV)
    line = one_error_line(result, (2, 3) if option == "--state" else (3,))
    assert EXPECTED[kind] in line and (x in line or Path(x).name in line), line
    assert SECRET not in result.stdout + result.stderr


def test_the_size_limit_is_raised_by_its_environment_variable(tmp_path: Path) -> None:
    big = tmp_path / "rules.v4"
    text = RULES.read_text()
    big.write_text(text + "#" * (2 * 1024 * 1024) + "\n")
    small = run_bounded("firewall", str(big), env={"FEEDBACK_CHECK_MAX_RULES_MB": "1"})
    assert "FEEDBACK_CHECK_MAX_RULES_MB" in one_error_line(small)
    raised = run_bounded("firewall", str(big), env={"FEEDBACK_CHECK_MAX_RULES_MB": "3"})
    assert raised.returncode == 2 and "firewall.range_blocked" in raised.stdout, raised.stderr


def test_sign_reads_stdin_where_it_documents_dash_but_within_the_limit(tmp_path: Path) -> None:
    with open("/dev/zero", "rb") as zero:
        result = run_bounded("sign", "-f", "-", "--passphrase-env", "HOSTILE_SHA_OUT",
                             env={**ENV, "FEEDBACK_CHECK_MAX_PARAMETERS_MB": "2"}, stdin=zero.fileno())
    assert "more than" in one_error_line(result)


# -- bombs and deep nesting ---------------------------------------------------------------------------

def test_yaml_alias_bomb_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = ['version: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    line = one_error_line(run_bounded("check", "--config", str(path)))
    assert f"{path}:" in line and "aliases" in line


@pytest.mark.parametrize(("text", "line_number"), [
    ("a: " + "[" * 300 + "]" * 300, 2),
    ("b:\n  " + "- " * 300 + "x", 3),
    ("c: " + "{a: " * 5000 + "1" + "}" * 5000, 2),
])
def test_deeply_nested_yaml_names_file_and_line(tmp_path: Path, text: str, line_number: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\n" + text + "\n")
    line = one_error_line(run_bounded("check", "--config", str(path)))
    assert f"{path}:{line_number}:" in line and "nested deeper than" in line


@pytest.mark.parametrize(("kind", "document"), [
    ("aws-sg", '{"SecurityGroups": [' * 5000 + "]" * 5000 + "}" * 0),
    ("aws-sg", '{"SecurityGroups":\n' + "[" * 100 + "]" * 100 + "}"),
    ("azure-nsg", "[" * 100_000),
    ("gcp-firewall", '{"a":' * 3000 + "1" + "}" * 3000),
    ("nftables", '{"nftables": [' + "[" * 4000 + "]" * 4000 + "]}"),
])
def test_deeply_nested_json_is_one_line_naming_the_file(tmp_path: Path, kind: str, document: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(document)
    line = one_error_line(run_bounded("firewall", "--type", kind, str(path)))
    assert str(path) in line and "RecursionError" not in line and "internal error" not in line


def test_deep_json_state_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[" * 100_000 + "]" * 100_000)
    before = state.read_bytes()
    line = one_error_line(run_bounded(*OPTIONS["--state"](tmp_path, str(state)), env=ENV), (2, 3))
    assert str(state) in line
    assert state.read_bytes() == before


@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_includes_three_wide_and_fourteen_deep_stop_at_the_budget(tmp_path: Path, server: str) -> None:
    # 3**14 = 4.8 million reads without a total budget.
    directive = "include {};" if server == "nginx" else "Include {}"
    for depth in range(15):
        name = tmp_path / f"level{depth}.conf"
        inner = "\n".join(directive.format(tmp_path / f"level{depth + 1}.conf") for _ in range(3)) \
            if depth < 14 else ("allow all;" if server == "nginx" else "Require all granted")
        name.write_text(inner + "\n")
    top = tmp_path / "site.conf"
    if server == "nginx":
        top.write_text("server {\n listen 443;\n location / {\n  include %s;\n }\n}\n" % (tmp_path / "level0.conf"))
    else:
        top.write_text("<VirtualHost *:443>\n<Location />\nInclude %s\n</Location>\n</VirtualHost>\n"
                       % (tmp_path / "level0.conf"))
    line = one_error_line(run_bounded("firewall", "--type", server, str(top)))
    assert "includes" in line and ("files in total" in line or "deeper than" in line)


@pytest.mark.parametrize(("kind", "template"), [
    ("iptables", '*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 443 -m comment --comment "{}" -j ACCEPT\nCOMMIT\n'),
    ("ipset", 'create allow hash:net family inet comment\nadd allow 1.2.3.0/24 comment "{}"\n'),
    ("apache", '<Location />\nRequire ip 10.0.0.0/8 "{}"\n</Location>\n'),
])
def test_a_megabyte_quoted_string_is_read_in_linear_time(tmp_path: Path, kind: str, template: str) -> None:
    # shlex-style splitting took 22 s for 1 MB; the subprocess timeout catches a return to it.
    path = tmp_path / f"rules.{kind}"
    path.write_text(template.format("x" * 4_000_000))
    if kind == "ipset":
        result = run_bounded("firewall", str(RULES), "--ipset", str(path), timeout=20)
    else:
        result = run_bounded("firewall", "--type", kind, str(path), timeout=20)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1, 2), result.stderr
