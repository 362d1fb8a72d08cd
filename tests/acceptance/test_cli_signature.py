"""`feedback-check sign`, `verify` and `explain` end to end, as a separate process.

Each run checks the exit code, the output, and that no passphrase ever reaches stdout or stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "signature"
PASS = "Mysecretsig1875!?"
EXAMPLE_PASS = "Example-SHA-OUT-passphrase!"
EXAMPLE_TEST_PASS = "Example-TEST-passphrase?"
OUT_VECTOR = ("ACCEPTANCE=1234&amount=15&BRAND=VISA&CARDNO=xxxxxxxxxxxx1111&currency=EUR&NCERROR=0&orderID=12"
              "&PAYID=32100123&PM=CreditCard&STATUS=9")
SECRETS = (PASS, EXAMPLE_PASS, EXAMPLE_TEST_PASS)


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FC_")}
    environ.update({"FC_PASS": PASS, "FC_EXAMPLE": EXAMPLE_PASS, "FC_EXAMPLE_TEST": EXAMPLE_TEST_PASS})
    environ.update(env or {})
    environ.pop("FEEDBACK_CHECK_DEBUG", None)
    result = subprocess.run([sys.executable, "-m", "feedback_check", *args], capture_output=True, cwd=ROOT,
                            env=environ, input=stdin, timeout=60, check=False)
    out = subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode("utf-8"),
                                      result.stderr.decode("utf-8"))
    for secret in SECRETS + tuple((env or {}).values()):
        assert secret not in out.stdout, f"passphrase leaked to stdout: {args}"
        assert secret not in out.stderr, f"passphrase leaked to stderr: {args}"
    assert "Traceback" not in out.stderr
    return out


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- sign ----------------------------------------------------------------------------------------------

def test_sign_sha_out_vector_text() -> None:
    result = run("sign", OUT_VECTOR + "&shop=ch&ECI=", "--passphrase-env", "FC_PASS", "--algorithm", "SHA-1")
    assert result.returncode == 0
    assert "SHASIGN: B209960D5703DD1047F95A0F97655FFE5AC8BD52" in result.stdout
    assert "ACCEPTANCE=1234********" in result.stdout and "ORDERID=12********" in result.stdout
    assert "shop  not on the SHA-OUT parameter list" in result.stdout
    assert "ECI   empty value" in result.stdout


def test_sign_sha_in_vectors_json() -> None:
    query = "AMOUNT=1500&CURRENCY=EUR&LANGUAGE=en_US&ORDERID=1234&PSPID=MyPSPID"
    for algorithm, expected in [("SHA-1", "F4CC376CD7A834D997B91598FA747825A238BE0A"),
                                ("SHA-256", "E019359BAA3456AE5A986B6AABD22CF1B3E09438739E97F17A7F61DF5A11B30F")]:
        result = run("sign", query, "--sha-in", "--passphrase-env", "FC_PASS", "--algorithm", algorithm,
                     "--format", "json")
        assert result.returncode == 0
        document = json.loads(result.stdout)
        assert document["digest"] == expected and document["rule"] == "SHA-IN"
        assert document["hashed_string_masked"] == ("AMOUNT=1500********CURRENCY=EUR********LANGUAGE=en_US********"
                                                    "ORDERID=1234********PSPID=MyPSPID********")
        assert document["schema_version"] == 1 and document["command"] == "sign"



def test_sign_takes_the_algorithm_from_the_input_shasign_like_verify() -> None:
    """The official SHA-IN example carries a SHA-1 SHASIGN: without --algorithm, sign hashes with SHA-1 and
    says why (as verify does), instead of SHA-512 and a 'does NOT match'."""
    vector = str(EXAMPLES / "payment-request-vector.txt")
    text = run("sign", "--sha-in", "-f", vector, "--passphrase-env", "FC_PASS")
    assert text.returncode == 0
    assert "SHA-IN signature · SHA-1 (from the input's SHASIGN length) · UTF-8" in text.stdout
    assert "SHASIGN: F4CC376CD7A834D997B91598FA747825A238BE0A" in text.stdout
    assert "The input's SHASIGN matches." in text.stdout
    document = json.loads(run("sign", "--sha-in", "-f", vector, "--passphrase-env", "FC_PASS", "--format",
                              "json").stdout)
    assert document["algorithm"] == "SHA-1" and document["algorithm_inferred"] is True
    assert document["input_shasign_matches"] is True
    # SHA-OUT the same way: a SHA-256 SHASIGN (lower case, as PHP's hash() gives it) names SHA-256.
    sha256 = hashlib.sha256(f"AMOUNT=15{PASS}ORDERID=12{PASS}".encode()).hexdigest()
    out = json.loads(run("sign", f"orderID=12&amount=15&SHASIGN={sha256}", "--passphrase-env", "FC_PASS",
                         "--format", "json").stdout)
    assert out["algorithm"] == "SHA-256" and out["algorithm_inferred"] is True and out["input_shasign_matches"]


def test_sign_algorithm_option_wins_and_no_shasign_means_the_platform_default() -> None:
    vector = str(EXAMPLES / "payment-request-vector.txt")
    given = run("sign", "--sha-in", "-f", vector, "--passphrase-env", "FC_PASS", "--algorithm", "SHA-512")
    assert "SHA-IN signature · SHA-512 · UTF-8" in given.stdout and "from the input" not in given.stdout
    assert "The input's SHASIGN does NOT match" in given.stdout
    for params in ("orderID=12&amount=15", "orderID=12&amount=15&SHASIGN=not-a-digest"):
        document = json.loads(run("sign", params, "--passphrase-env", "FC_PASS", "--format", "json").stdout)
        assert document["algorithm"] == "SHA-512" and document["algorithm_inferred"] is False
        assert document["digest"] == hashlib.sha512(f"AMOUNT=15{PASS}ORDERID=12{PASS}".encode()).hexdigest().upper()

def test_sign_encoding_vector_utf8_and_iso(tmp_path: Path) -> None:
    lines = tmp_path / "params.txt"
    lines.write_text("CN=Países Bajos\norderID=7\n", encoding="utf-8")
    utf8 = run("sign", "-f", str(lines), "--passphrase-env", "FC_PASS", "--format", "json")
    expected_utf8 = hashlib.sha512(f"CN=Países Bajos{PASS}ORDERID=7{PASS}".encode()).hexdigest().upper()
    assert json.loads(utf8.stdout)["digest"] == expected_utf8
    lines.write_bytes("CN=Países Bajos\norderID=7\n".encode("latin-1"))
    iso = run("sign", "-f", str(lines), "--passphrase-env", "FC_PASS", "--encoding", "ISO-8859-1", "--format", "json")
    expected_iso = hashlib.sha512(f"CN=Países Bajos{PASS}ORDERID=7{PASS}".encode("latin-1")).hexdigest().upper()
    assert json.loads(iso.stdout)["digest"] == expected_iso != expected_utf8


def test_sign_captured_post_from_stdin_and_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "sha-out"
    secret.write_text(EXAMPLE_PASS + "\n")
    secret.chmod(0o600)
    capture = (EXAMPLES / "postsale-post-ok.http").read_bytes()
    result = run("sign", "-f", "-", "--passphrase-file", str(secret), stdin=capture)
    assert result.returncode == 0 and result.stderr == ""
    assert "HTTP request (POST)" in result.stdout and "The input's SHASIGN matches." in result.stdout


def test_sign_warns_about_a_readable_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "sha-out"
    secret.write_text(PASS)
    secret.chmod(0o644)
    result = run("sign", OUT_VECTOR, "--passphrase-file", str(secret))
    assert result.returncode == 0 and "warning" in result.stderr and "chmod 600" in result.stderr


def test_passphrase_equal_to_a_parameter_value_is_masked_everywhere() -> None:
    # ACCEPTANCE carries the passphrase's exact text: it must not appear anywhere either.
    query = f"ACCEPTANCE={EXAMPLE_PASS}&amount=15&orderID=12"
    for fmt in ("text", "json"):
        result = run("sign", urlencode(dict(p.split("=", 1) for p in query.split("&"))), "--passphrase-env",
                     "FC_EXAMPLE", "--format", fmt)
        assert result.returncode == 0 and "********" in result.stdout


def test_no_passphrase_without_a_terminal_is_a_usage_error() -> None:
    line = one_line_error(run("sign", OUT_VECTOR, stdin=b""))
    assert "--passphrase-env" in line


def test_unset_environment_variable() -> None:
    assert "FC_NOPE" in one_line_error(run("sign", OUT_VECTOR, "--passphrase-env", "FC_NOPE"))


def test_there_is_no_plain_passphrase_option() -> None:
    result = run("sign", OUT_VECTOR, "--passphrase", "x")
    assert result.returncode == 3 and "No such option" in result.stderr


# -- verify --------------------------------------------------------------------------------------------

def test_verify_vector_matches() -> None:
    result = run("verify", "-f", str(EXAMPLES / "postsale-vector.query"), "--passphrase-env", "FC_PASS")
    assert result.returncode == 0
    assert "OK: SHASIGN matches (SHA-OUT, SHA-1 (from the SHASIGN length), UTF-8)" in result.stdout


def test_verify_sha_in_vector_from_key_value_lines() -> None:
    result = run("verify", "--sha-in", "-f", str(EXAMPLES / "payment-request-vector.txt"), "--passphrase-env",
                 "FC_PASS", "--format", "json")
    assert result.returncode == 0 and json.loads(result.stdout)["match"] is True


def test_verify_example_capture_ok() -> None:
    result = run("verify", "-f", str(EXAMPLES / "postsale-post-ok.http"), "--passphrase-env", "FC_EXAMPLE",
                 "--algorithm", "SHA-512")
    assert result.returncode == 0 and "OK: SHASIGN matches" in result.stdout


def test_verify_names_a_stale_list() -> None:
    result = run("verify", "-f", str(EXAMPLES / "postsale-get-stale-list.http"), "--passphrase-env", "FC_EXAMPLE")
    assert result.returncode == 2
    assert "[signature.mistake.outdated_list]" in result.stdout and "PAYIDSUB" in result.stdout
    # Two outdated lists reproduce it: the alternative says which one, not only the same title again.
    assert "'ogone-2010' list" in result.stdout and "'epdq-omnipay' list" in result.stdout


def test_verify_names_the_test_passphrase_text_and_json() -> None:
    args = ("verify", "-f", str(EXAMPLES / "postsale-test-passphrase.http"), "--passphrase-env", "FC_EXAMPLE",
            "--test-passphrase-env", "FC_EXAMPLE_TEST")
    text = run(*args)
    assert text.returncode == 2 and "[signature.mistake.test_passphrase]" in text.stdout
    document = json.loads(run(*args, "--format", "json").stdout)
    assert [m["code"] for m in document["explanation"]] == ["signature.mistake.test_passphrase"]
    assert document["status"] == "mismatch_explained"


def test_verify_iso_capture_needs_its_encoding() -> None:
    capture = str(EXAMPLES / "postsale-post-iso-8859-1.http")
    ok = run("verify", "-f", capture, "--passphrase-env", "FC_EXAMPLE", "--encoding", "ISO-8859-1")
    assert ok.returncode == 0
    line = one_line_error(run("verify", "-f", capture, "--passphrase-env", "FC_EXAMPLE"))
    assert "postsale-post-iso-8859-1.http:7:" in line and "ISO-8859-1" in line


def test_verify_encoding_mistake_with_shasign_option() -> None:
    wrong = hashlib.sha512(f"CN=Países Bajos{PASS}ORDERID=7{PASS}".encode("latin-1")).hexdigest()
    result = run("verify", "CN=Pa%C3%ADses+Bajos&orderID=7", "--shasign", wrong, "--passphrase-env", "FC_PASS")
    assert result.returncode == 2 and "[signature.mistake.encoding]" in result.stdout


def test_verify_unexplained_mismatch_exits_2_and_says_so() -> None:
    result = run("verify", OUT_VECTOR, "--shasign", "A" * 40, "--passphrase-env", "FC_PASS")
    assert result.returncode == 2 and "No known mistake" in result.stdout


def test_verify_whitespace_passphrase_text_never_shows_it() -> None:
    text = "".join(f"{k}={v}{PASS}\n" for k, v in sorted(
        (k.upper(), v) for k, v in (p.split("=") for p in OUT_VECTOR.split("&"))))
    wrong = hashlib.sha256(text.encode()).hexdigest()
    result = run("verify", OUT_VECTOR, "--shasign", wrong, "--passphrase-env", "FC_PASS")
    assert result.returncode == 2 and "[signature.mistake.passphrase_whitespace]" in result.stdout
    assert "********\\n" in result.stdout


def test_several_name_value_arguments_are_one_input() -> None:
    """Audit 14: `sign orderID=1 amount=2` (one argument per parameter) works like the query string."""
    pairs = OUT_VECTOR.split("&")
    joined = run("sign", OUT_VECTOR, "--passphrase-env", "FC_PASS", "--algorithm", "SHA-1")
    several = run("sign", *pairs, "--passphrase-env", "FC_PASS", "--algorithm", "SHA-1")
    assert several.returncode == 0, several.stderr
    assert "SHASIGN: B209960D5703DD1047F95A0F97655FFE5AC8BD52" in several.stdout
    assert joined.stdout.splitlines()[-1] == several.stdout.splitlines()[-1]
    match = run("verify", *pairs, "SHASIGN=B209960D5703DD1047F95A0F97655FFE5AC8BD52", "--passphrase-env", "FC_PASS")
    assert match.returncode == 0 and "OK: SHASIGN matches" in match.stdout


def test_argument_values_with_ampersand_and_equals_stay_whole(tmp_path: Path) -> None:
    """A value with '&' or '=' in one argument is that parameter's value, as the same lines in -f are."""
    values = ["orderID=12", "amount=15", "CN=Anna & Co=AG", "currency=EUR"]
    lines = tmp_path / "params.txt"
    lines.write_text("\n".join(values) + "\n")
    from_args = run("sign", *values, "--passphrase-env", "FC_PASS", "--format", "json")
    from_file = run("sign", "-f", str(lines), "--passphrase-env", "FC_PASS", "--format", "json")
    assert from_args.returncode == from_file.returncode == 0, from_args.stderr
    args_doc, file_doc = json.loads(from_args.stdout), json.loads(from_file.stdout)
    assert {"name": "CN", "value": "Anna & Co=AG"} in args_doc["input"]["parameters"]
    assert args_doc["digest"] == file_doc["digest"]
    expected = hashlib.sha512("".join(f"{k}={v}{PASS}" for k, v in sorted(
        (n.upper(), v) for n, v in (p.split("=", 1) for p in values))).encode()).hexdigest().upper()
    assert args_doc["digest"] == expected


@pytest.mark.parametrize(("args", "words"), [
    (("verify", OUT_VECTOR), "no SHASIGN"),
    (("verify", OUT_VECTOR + "&SHASIGN=XYZ"), "not a hexadecimal digest"),
    (("verify", OUT_VECTOR + "&SHASIGN=ABCD"), "hex digits"),
    (("verify", "amount=15&orderID"), "has no '='"),
    (("verify", "amount=15&CN=%G1"), "invalid percent-escape"),
    (("sign", "-f", "/nonexistent/params.txt"), "/nonexistent/params.txt: file not found"),
    (("sign", OUT_VECTOR, "--algorithm", "MD5"), "unknown hash algorithm"),
    (("sign",), "no parameters"),
    (("sign", "orderID=1", "amount"), "'amount' is not NAME=VALUE"),
    (("sign", "orderID=1", "-f", "/nonexistent/params.txt"), "either as arguments or with --file"),
])
def test_bad_input_is_one_line_exit_3(args: tuple[str, ...], words: str) -> None:
    assert words in one_line_error(run(*args, "--passphrase-env", "FC_PASS"))


def test_malformed_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "params.txt"
    bad.write_text("orderID=1\namount=15\nno equals sign here\n")
    line = one_line_error(run("verify", "-f", str(bad), "--passphrase-env", "FC_PASS"))
    assert f"{bad}:3:" in line


def test_error_text_never_shows_the_passphrase() -> None:
    # The malformed segment is the passphrase itself: the error must mask it.
    line = one_line_error(run("verify", f"amount=15&{EXAMPLE_PASS}", "--passphrase-env", "FC_EXAMPLE"))
    assert "********" in line


@pytest.mark.parametrize("command", ["sign", "verify"])
def test_passphrase_the_encoding_cannot_encode_is_named_without_showing_it(command: str) -> None:
    # The offending character is in the passphrase: the error says so and shows no part of it.
    euro_pass = "Zq-UNIQUE-passphrase-91!€"
    line = one_line_error(run(command, OUT_VECTOR + "&SHASIGN=" + "A" * 40, "--passphrase-env", "FC_EURO",
                              "--encoding", "ISO-8859-1", env={"FC_EURO": euro_pass}))
    assert "the passphrase contains a character that ISO-8859-1 cannot encode" in line
    assert "€" not in line and "<argument>" not in line


# -- explain -------------------------------------------------------------------------------------------

def test_explain_unknown_order_ip() -> None:
    result = run("explain", "unknown", "order/1/i/198.51.100.23")
    assert result.returncode == 0 and "198.51.100.23" in result.stdout and "DirectLink" in result.stdout


def test_explain_status_json() -> None:
    result = run("explain", "STATUS=92", "--format", "json")
    document = json.loads(result.stdout)
    assert result.returncode == 0 and document["documented"] is True
    assert document["explanations"][0]["details"]["second_digit"].startswith("uncertain")


def test_explain_finding_code() -> None:
    result = run("explain", "firewall.legacy_allowlist")
    assert result.returncode == 0 and "pre-2019" in result.stdout and "Fix:" in result.stdout


def test_explain_not_documented_exits_3() -> None:
    result = run("explain", "unknown order/7/z/")
    assert result.returncode == 3 and "not documented" in result.stdout


def test_explain_imports_no_network_library() -> None:
    code = ("import sys\nfrom feedback_check.cli import main\n"
            "try:\n    main(['explain', 'STATUS=9'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "heavy = [m for m in ('httpx', 'dns', 'dns.resolver', 'cryptography', 'ssl') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
