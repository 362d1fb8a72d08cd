"""Access-log evidence: formats, reading (rotation, gzip, hostile lines), who is PostFinance, findings."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
from pathlib import Path

import pytest

from feedback_check.errors import ConfigError, UsageError
from feedback_check.findings import Severity, Verdict, verdict_of
from feedback_check.logs.evidence import FeedbackPath, LogQuery
from feedback_check.logs.formats import apache_format, definition_format, detect, nginx_format
from feedback_check.logs.judgement import check_logs
from feedback_check.logs.query import build_query
from feedback_check.logs.serverconf import formats_from_config
from feedback_check.logs.sources import Prefilter, Sources, TrustedProxies
from feedback_check.platform import load_platform

PLATFORM = load_platform()
FEEDBACK = (FeedbackPath("/postfinance/feedback", "https://shop.example/postfinance/feedback"),)


def clf(day: int, hour: int, minute: int = 0) -> str:
    return f"{day:02d}/Nov/2026:{hour:02d}:{minute:02d}:00 +0100"


def combined(client: str, when: str, method: str = "POST", path: str = "/postfinance/feedback",
             status: int = 200, extra: str = "") -> str:
    return f'{client} - - [{when}] "{method} {path} HTTP/1.1" {status} 12 "-" "Java/1.8"{extra}'


def write(tmp_path: Path, name: str, lines: list[str], *, compress: bool = False) -> Path:
    path = tmp_path / name
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def codes(summary) -> dict[str, Severity]:
    return {f.code: f.severity for f in summary.findings}


def run(paths, query: LogQuery | None = None):
    return check_logs([str(p) for p in paths], PLATFORM, query or LogQuery(paths=FEEDBACK))


# -- formats ----------------------------------------------------------------------------------------------

def test_combined_detected_and_parsed() -> None:
    line = combined("185.8.53.17", clf(30, 14, 2)).encode()
    fmt = detect([line])
    assert fmt is not None and fmt.name == "combined" and fmt.client_field == 0
    record = fmt.parse(line)
    assert record is not None
    assert (record.peer, record.method, record.path, record.status) == ("185.8.53.17", "POST",
                                                                        "/postfinance/feedback", 200)
    assert record.time == dt.datetime(2026, 11, 30, 13, 2, tzinfo=dt.UTC)


def test_vhost_combined_and_common_detected() -> None:
    vhost = b'shop.example:443 185.8.53.17 - - [30/Nov/2026:14:02:00 +0100] "POST /f HTTP/1.1" 200 5 "-" "J"'
    common = b'185.8.53.17 - - [30/Nov/2026:14:02:00 +0100] "POST /f HTTP/1.1" 200 5'
    vfmt = detect([vhost])
    assert vfmt is not None and vfmt.name == "vhost_combined" and vfmt.client_field == 1
    record = vfmt.parse(vhost)
    assert record is not None and record.host is None and record.peer == "185.8.53.17"   # %v: not the Host
    cfmt = detect([common])
    assert cfmt is not None and cfmt.name == "common"


def test_nginx_log_format_with_request_time_and_headers() -> None:
    fmt = nginx_format('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                       '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" rt=$request_time '
                       'urt=$upstream_response_time')
    record = fmt.parse(b'10.0.0.5 - - [30/Nov/2026:14:02:11 +0100] "POST /pf?x=1 HTTP/1.1" 500 0 "-" "Java" '
                       b'"185.8.53.17, 10.0.0.4" rt=0.312 urt=0.310')
    assert record is not None
    assert record.path == "/pf" and record.seconds == pytest.approx(0.312)
    assert record.forwarded_for == "185.8.53.17, 10.0.0.4" and record.upstream == "0.310"
    assert fmt.logs_seconds


def test_apache_logformat_with_microseconds() -> None:
    fmt = apache_format(r'%a %l %u %t \"%r\" %>s %b %D')
    record = fmt.parse(b'185.8.53.17 - - [30/Nov/2026:14:02:11 +0100] "GET /pf HTTP/1.1" 200 3 250000')
    assert record is not None and record.seconds == pytest.approx(0.25) and record.method == "GET"


def test_definition_without_client_address_refused() -> None:
    with pytest.raises(ConfigError, match="client address"):
        nginx_format('[$time_local] "$request" $status')


@pytest.mark.parametrize("line,flavour,seconds", [
    ({"time_local": "30/Nov/2026:14:02:11 +0100", "remote_addr": "185.8.53.17",
      "request": "POST /postfinance/feedback HTTP/1.1", "status": "502", "request_time": "1.500"},
     "json (nginx)", 1.5),
    ({"level": "info", "ts": 1796130131.5, "logger": "http.log.access", "msg": "handled request",
      "request": {"remote_ip": "185.8.53.17", "method": "POST", "uri": "/postfinance/feedback?a=1",
                  "host": "shop.example", "headers": {"X-Forwarded-For": ["1.2.3.4"]}},
      "duration": 0.02, "status": 502}, "json (caddy)", 0.02),
    ({"ClientHost": "185.8.53.17", "RequestMethod": "POST", "RequestPath": "/postfinance/feedback",
      "DownstreamStatus": 502, "Duration": 3000000, "StartUTC": "2026-11-30T13:02:11.5Z"},
     "json (traefik)", 0.003),
])
def test_json_flavours(line: dict, flavour: str, seconds: float) -> None:
    raw = json.dumps(line).encode()
    fmt = detect([raw])
    assert fmt is not None and fmt.name == flavour
    record = fmt.parse(raw)
    assert record is not None and record.peer == "185.8.53.17" and record.status == 502
    assert record.path == "/postfinance/feedback" and record.seconds == pytest.approx(seconds)
    assert record.time is not None


def test_alb_log() -> None:
    line = (b'https 2026-11-30T13:02:11.123456Z app/shop/50dc6c495c0c9188 185.8.53.17:2817 10.0.0.1:80 '
            b'0.000 0.312 0.000 200 200 34 366 "POST https://shop.example:443/postfinance/feedback?x=1 HTTP/1.1" '
            b'"Java/1.8" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:eu-central-1:1:'
            b'targetgroup/t/1 "Root=1-58337262-36d228ad5d99923122bbe354" "shop.example" "arn" 0 '
            b'2026-11-30T13:02:10.800000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"')
    fmt = detect([line])
    assert fmt is not None and fmt.name == "aws-alb" and fmt.client_field == 3
    record = fmt.parse(line)
    assert record is not None and record.peer == "185.8.53.17" and record.path == "/postfinance/feedback"
    assert record.seconds == pytest.approx(0.312)


def test_log_format_from_nginx_and_apache_configuration(tmp_path: Path) -> None:
    nginx_conf = tmp_path / "nginx.conf"
    nginx_conf.write_text('http {\n  log_format timed \'$remote_addr [$time_local] "$request" $status \'\n'
                          '                   \'$request_time\';\n  server { listen 80;\n'
                          '    access_log /var/log/nginx/access.log timed; }\n}\n')
    formats = formats_from_config(str(nginx_conf))
    assert formats[0].name.startswith("nginx log_format timed")
    assert formats[0].parse(b'185.8.53.17 [30/Nov/2026:14:02:11 +0100] "POST /f HTTP/1.1" 200 0.5') is not None
    apache_conf = tmp_path / "site.conf"
    apache_conf.write_text('LogFormat "%h %l %u %t \\"%r\\" %>s %b %D" timed\n<VirtualHost *:443>\n'
                           '  CustomLog ${APACHE_LOG_DIR}/access.log timed\n</VirtualHost>\n')
    formats = formats_from_config(str(apache_conf))
    record = formats[0].parse(b'185.8.53.17 - - [30/Nov/2026:14:02:11 +0100] "POST /f HTTP/1.1" 200 3 1000')
    assert record is not None and record.seconds == pytest.approx(0.001)


def test_bad_log_format_option() -> None:
    with pytest.raises(ConfigError):
        definition_format("no variables here")


# -- who is PostFinance ---------------------------------------------------------------------------------

def test_forged_forwarding_header_from_untrusted_peer_is_not_postfinance(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status "$http_x_forwarded_for"')
    lines = [f'198.51.100.7 [{clf(d, 10)}] "POST /postfinance/feedback HTTP/1.1" 200 "185.8.53.17"'
             for d in (10, 12, 14)]
    log = write(tmp_path, "access.log", lines)
    query = LogQuery(paths=FEEDBACK, log_format=fmt.definition)
    summary = run([log], query)
    path = summary.evidence.paths[0]
    assert path.published.count == 0 and path.foreign.count == 3 and path.foreign.claimed_count == 3
    found = codes(summary)
    assert found["logs.foreign_sources"] is Severity.WARNING
    # the log cannot tell whether PostFinance's post-sales arrived: never a critical "none arrived"
    assert found["logs.no_postsale"] is Severity.WARNING
    # declared as a trusted proxy, the same lines are PostFinance's post-sales
    trusted = LogQuery(paths=FEEDBACK, log_format=fmt.definition,
                       trusted=TrustedProxies.parse(["198.51.100.0/24"]))
    summary = run([log], trusted)
    assert summary.evidence.paths[0].published.count == 3
    assert summary.evidence.paths[0].published.first.via == "198.51.100.7"
    assert "logs.postsale_ok" in codes(summary) and "logs.no_postsale" not in codes(summary)


def test_trusted_proxy_uses_rightmost_untrusted_forwarded_address() -> None:
    sources = Sources(PLATFORM, TrustedProxies.parse(["10.0.0.0/8", "loopback"]))
    fmt = nginx_format('$remote_addr "$http_x_forwarded_for" "$request" $status')
    record = fmt.parse(b'127.0.0.1 "185.8.53.17, 203.0.113.5, 10.1.1.1" "POST /f HTTP/1.1" 200')
    assert record is not None
    client = sources.client(record)
    # 203.0.113.5 is the last address not a trusted proxy: a client could have forged 185.8.53.17 before it
    assert client.address == "203.0.113.5" and client.kind is None


def test_presets_and_bad_proxies() -> None:
    cloudflare = TrustedProxies.parse(["cloudflare"])
    assert "173.245.48.1" in cloudflare.addresses and "2606:4700::1" in cloudflare.addresses
    assert cloudflare.presets[0].source.startswith("https://www.cloudflare.com/")
    with pytest.raises(UsageError, match="preset"):
        TrustedProxies.parse(["akamai-not-a-preset"])
    with pytest.raises(UsageError):
        TrustedProxies.parse(["300.1.1.1/8"])


def test_legacy_senders_flagged(tmp_path: Path) -> None:
    log = write(tmp_path, "access.log", [combined("212.23.45.100", clf(d, 10)) for d in (10, 20)])
    summary = run([log])
    assert codes(summary)["logs.legacy_sources"] is Severity.WARNING
    assert "logs.no_postsale" not in codes(summary)


def test_prefilter_selects_postfinance_and_feedback_path_lines_only() -> None:
    fmt = detect([combined("1.2.3.4", clf(1, 1)).encode()])
    assert fmt is not None
    sources = Sources(PLATFORM)
    prefilter = Prefilter(sources.interesting(), [b"/postfinance/feedback"], fmt)
    lines = [combined("185.8.52.1", clf(1, 1), path="/x").encode(),       # PostFinance, other path
             combined("185.9.52.1", clf(1, 1), path="/x").encode(),       # same first octet, stranger
             combined("8.8.8.8", clf(1, 1), path="/x").encode(),
             combined("8.8.8.8", clf(1, 1)).encode(),                     # stranger on the feedback path
             combined("::ffff:91.208.214.9", clf(1, 1), path="/x").encode()]
    assert prefilter.select(lines) == [0, 3, 4]


# -- reading ---------------------------------------------------------------------------------------------

def test_rotated_and_gzip_files_read_in_time_order(tmp_path: Path) -> None:
    old = write(tmp_path, "access.log.2.gz", [combined("185.8.53.17", clf(10, 10), status=500)], compress=True)
    middle = write(tmp_path, "access.log.1", [combined("185.8.53.17", clf(11, 10), status=500)])
    current = write(tmp_path, "access.log", [combined("185.8.53.17", clf(12, 10))])
    summary = run([current, middle, old])
    files = [Path(f.name).name for f in summary.evidence.files]
    assert files == ["access.log.2.gz", "access.log.1", "access.log"]
    assert summary.evidence.files[0].compressed
    group = summary.evidence.paths[0].published
    assert group.first_failure.where.endswith("access.log.2.gz:1") and group.last.status == 200
    assert codes(summary)["logs.postsale_failed"] is Severity.WARNING      # recovered since


def test_truncated_gzip_keeps_lines_before_the_cut(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, h), status=500) for h in range(24)] * 200
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    path = tmp_path / "access.log.3.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    summary = run([path])
    assert summary.evidence.paths[0].published.count > 0
    unreadable = [f for f in summary.findings if f.code == "logs.unreadable"]
    assert unreadable and "truncated" in unreadable[0].detail
    assert codes(summary)["logs.postsale_failed"] is Severity.CRITICAL


def test_hostile_lines_are_counted_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    good = combined("185.8.53.17", clf(10, 10)).encode()
    huge = b"185.8.53.17 " + b"A" * (600 * 1024)
    binary = b"185.8.52.9 \x00\x01\x02\xff\xfe garbage"
    path.write_bytes(b"\n".join([good, huge, binary, good, b"\xff" * 50]) + b"\n")
    summary = run([path])
    assert summary.evidence.paths[0].published.count == 2
    assert summary.evidence.files[0].lines == 5
    problems = {p.line: p.problem for p in summary.evidence.unreadable_examples}
    assert "longer than" in problems[2] and "binary" in problems[3]


def test_directory_fifo_and_missing_files_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        run([tmp_path])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        run([fifo])
    with pytest.raises(ConfigError, match="not found"):
        run([tmp_path / "nope.log"])


def test_unrecognised_format_is_reported_not_crashed(tmp_path: Path) -> None:
    log = write(tmp_path, "weird.log", ["this is not an access log", "nor is this"])
    summary = run([log])
    assert "logs.unreadable" in codes(summary)
    assert codes(summary)["logs.no_postsale"] is Severity.INFO       # nothing could be read: no conclusion


# -- findings ------------------------------------------------------------------------------------------

def test_no_postsale_only_when_the_log_covers_long_enough(tmp_path: Path) -> None:
    short = write(tmp_path, "short.log", [combined("8.8.8.8", clf(10, h), path="/") for h in (1, 5)])
    assert codes(run([short]))["logs.no_postsale"] is Severity.INFO
    long = write(tmp_path, "long.log", [combined("8.8.8.8", clf(d, 1), path="/") for d in (10, 13)])
    summary = run([long])
    assert codes(summary)["logs.no_postsale"] is Severity.CRITICAL
    assert summary.verdict is Verdict.CRITICAL
    assert "firewall" in next(f.fix for f in summary.findings if f.code == "logs.no_postsale")
    relaxed = run([long], LogQuery(paths=FEEDBACK, expected_interval=dt.timedelta(days=7)))
    assert codes(relaxed)["logs.no_postsale"] is Severity.INFO


def test_silence_after_regular_postsales_is_critical(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, h)) for h in range(24)]
    lines += [combined("8.8.8.8", clf(14, 12), path="/")]
    summary = run([write(tmp_path, "access.log", lines)])
    silent = [f for f in summary.findings if f.code == "logs.no_postsale"]
    assert silent and silent[0].severity is Severity.CRITICAL and "since 2026-11-10 22:00" in silent[0].detail


def test_redirects_slow_and_method(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status $request_time $upstream_response_time')
    lines = [f'185.8.53.17 [{clf(10, 1)}] "GET /postfinance/feedback HTTP/1.1" 301 0.000 -',
             f'185.8.53.17 [{clf(10, 2)}] "POST /postfinance/feedback HTTP/1.1" 200 7.5 7.4',
             f'185.8.53.17 [{clf(10, 3)}] "POST /postfinance/feedback HTTP/1.1" 301 0.000 -']
    log = write(tmp_path, "access.log", lines)
    summary = run([log], LogQuery(paths=FEEDBACK, log_format=fmt.definition, method="POST"))
    found = codes(summary)
    assert found["logs.postsale_redirected"] is Severity.CRITICAL        # before the handler, still happening
    assert found["logs.postsale_slow"] is Severity.WARNING
    assert found["logs.method_mismatch"] is Severity.WARNING
    kinds = summary.evidence.paths[0].published.redirect_kinds
    assert kinds == {"before_handler": 2}


def test_other_paths_and_near_miss(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, 1), path="/postfinance/feedback/", status=404),
             combined("185.8.53.17", clf(11, 1), path="/postfinance/feedback/", status=404)]
    summary = run([write(tmp_path, "access.log", lines)])
    other = next(f for f in summary.findings if f.code == "logs.other_paths")
    assert "trailing slash" in other.detail
    assert codes(summary)["logs.no_postsale"] is Severity.CRITICAL


def test_at_shows_requests_around_a_process_error(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, 13, m), status=500 if m == 2 else 200) for m in range(0, 60, 2)]
    summary = run([write(tmp_path, "access.log", lines)],
                  build_query(paths=["/postfinance/feedback"], at="2026-11-10T13:02:00+01:00", window="5m"))
    around = summary.evidence.around
    assert [h.status for h in around] == [200, 500, 200, 200]    # 13:00 .. 13:06 local: within ± 5 min
    assert around[1].where.endswith(":2")


def test_discovery_without_configured_path(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, 1), path="/pf/one"), combined("8.8.8.8", clf(10, 9), path="/")]
    summary = check_logs([str(write(tmp_path, "a.log", lines))], PLATFORM, LogQuery())
    assert [p.path.path for p in summary.evidence.paths] == ["/pf/one"]
    assert verdict_of(summary.findings) is Verdict.OK


def test_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    data = ("\n".join(combined("185.8.53.17", clf(10, h)) for h in range(3)) + "\n").encode()

    class FakeStdin:
        buffer = io.BufferedReader(io.BytesIO(data))

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    summary = check_logs(["-"], PLATFORM, LogQuery(paths=FEEDBACK))
    assert summary.evidence.paths[0].published.count == 3 and summary.evidence.files[0].name == "-"


def test_prefilter_for_json_vhost_alb_and_ipv6_trusted_proxies() -> None:
    sources = Sources(PLATFORM, TrustedProxies.parse(["cloudflare"]))
    json_fmt = detect([b'{"remote_addr":"1.2.3.4","request":"GET / HTTP/1.1","status":"200"}'])
    assert json_fmt is not None and json_fmt.client_key == b"remote_addr"
    prefilter = Prefilter(sources.interesting(), [], json_fmt)
    lines = [b'{"time":"x","remote_addr":"185.8.52.1","status":"200"}',
             b'{"time":"x","remote_addr": "8.8.8.8","status":"200"}',
             b'{"time":"x","remote_addr":"2606:4700::1","status":"200"}',        # Cloudflare, IPv6
             b'{"time":"x","remote_addr":"173.245.48.9","status":"200"}']        # Cloudflare, IPv4
    assert prefilter.select(lines) == [0, 2, 3]
    vhost = detect([b'shop:443 1.2.3.4 - - [30/Nov/2026:14:02:00 +0100] "GET / HTTP/1.1" 200 5 "-" "J"'])
    assert vhost is not None
    prefilter = Prefilter(Sources(PLATFORM).interesting(), [], vhost)
    assert prefilter.select([b'shop:443 185.8.52.1 - - [x] "GET / HTTP/1.1" 200 5 "-" "J"',
                             b'shop:443 18.8.52.1 - - [x] "GET / HTTP/1.1" 200 5 "-" "J"']) == [0]


def test_cloudflare_header_behind_trusted_cdn(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status "$http_cf_connecting_ip"')
    lines = [f'172.64.1.1 [{clf(10, 1)}] "POST /postfinance/feedback HTTP/1.1" 200 "185.8.53.17"',
             f'8.8.8.8 [{clf(10, 2)}] "POST /postfinance/feedback HTTP/1.1" 200 "185.8.53.17"']
    log = write(tmp_path, "access.log", lines)
    summary = run([log], LogQuery(paths=FEEDBACK, log_format=fmt.definition,
                                  trusted=TrustedProxies.parse(["cloudflare"])))
    path = summary.evidence.paths[0]
    assert path.published.count == 1 and path.published.first.via == "172.64.1.1"
    assert path.foreign.count == 1 and path.foreign.claimed_count == 1       # not from Cloudflare: forged


def test_reading_stops_at_the_run_deadline(tmp_path: Path) -> None:
    import time

    log = write(tmp_path, "access.log", [combined("185.8.53.17", clf(10, h)) for h in range(5)])
    summary = check_logs([str(log)], PLATFORM, LogQuery(paths=FEEDBACK), deadline=time.monotonic() - 1)
    assert summary.evidence.paths[0].published.count == 0
    assert "deadline" in summary.evidence.unreadable_examples[0].problem
    assert codes(summary)["logs.unreadable"] is Severity.WARNING


def test_no_postsale_not_concluded_when_the_back_office_sends_none(tmp_path: Path) -> None:
    long = write(tmp_path, "long.log", [combined("8.8.8.8", clf(d, 1), path="/") for d in (10, 13)])
    summary = run([long], LogQuery(paths=FEEDBACK, expect_postsales=False))
    assert "logs.no_postsale" not in codes(summary)


def test_status_meanings_name_the_cause(tmp_path: Path) -> None:
    lines = [combined("185.8.53.17", clf(10, 1), status=499), combined("185.8.53.17", clf(10, 2), status=444)]
    failed = next(f for f in run([write(tmp_path, "a.log", lines)]).findings if f.code == "logs.postsale_failed")
    assert "longer than the platform waits" in failed.detail and "without an answer" in failed.detail
    assert failed.severity is Severity.CRITICAL                   # the latest post-sale failed


def test_answer_of_the_logs_command(tmp_path: Path) -> None:
    from feedback_check.report import Report

    def answer(lines: list[str], query: LogQuery | None = None) -> str:
        summary = run([write(tmp_path, "a.log", lines)], query)
        return Report(command="logs", findings=summary.findings, logs=(summary,)).answer()

    assert answer([combined("185.8.53.17", clf(10, 1))]).startswith(
        "PostFinance's post-sales arrived: 1 from its addresses, 1 answered 2xx")
    assert "too short to conclude" in answer([combined("8.8.8.8", clf(10, 1), path="/")])
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status "$http_x_forwarded_for"')
    forged = [f'198.51.100.7 [{clf(d, 10)}] "POST /postfinance/feedback HTTP/1.1" 200 "185.8.53.17"' for d in (10, 14)]
    assert "was recognised" in answer(forged, LogQuery(paths=FEEDBACK, log_format=fmt.definition))
    assert answer([combined("185.8.53.17", clf(10, 1), status=500)]).startswith(
        "PostFinance would report a process error because")


def test_discovered_paths_are_read_again_for_strangers(tmp_path: Path) -> None:
    lines = [combined("203.0.113.66", clf(10, 1), path="/pf/one"),          # before PostFinance's first request
             combined("185.8.53.17", clf(10, 2), path="/pf/one"),
             combined("185.8.53.17", clf(10, 3), path="/pf/one", status=200),
             combined("203.0.113.67", clf(10, 4), path="/other")]
    log = write(tmp_path, "a.log", lines)
    summary = check_logs([str(log)], PLATFORM, LogQuery())
    path = summary.evidence.paths[0]
    assert summary.evidence.strangers_checked and path.published.count == 2
    assert path.foreign.count == 1 and path.foreign.first.where.endswith("a.log:1")
    assert summary.evidence.parsed == 3 and summary.evidence.unreadable == 0
    assert codes(summary)["logs.foreign_sources"] is Severity.WARNING


def test_requested_host_tells_two_shops_on_one_log_apart(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status $host')
    lines = [f'185.8.53.17 [{clf(10, 1)}] "POST /postfinance/feedback HTTP/1.1" 200 shop.example',
             f'185.8.53.17 [{clf(10, 2)}] "POST /postfinance/feedback HTTP/1.1" 404 Other-Shop.example:443',
             f'8.8.8.8 [{clf(10, 3)}] "POST /postfinance/feedback HTTP/1.1" 200 other-shop.example']
    query = build_query(urls=["https://shop.example/postfinance/feedback"], log_format=fmt.definition)
    summary = run([write(tmp_path, "a.log", lines)], query)
    path = summary.evidence.paths[0]
    assert path.published.count == 1 and path.foreign.count == 0
    assert list(summary.evidence.other_paths) == ["//other-shop.example/postfinance/feedback"]
    # a log without the Host counts every request to the path
    plain = run([write(tmp_path, "b.log", [combined("185.8.53.17", clf(10, 1))])],
                build_query(urls=["https://shop.example/postfinance/feedback"]))
    assert plain.evidence.paths[0].published.count == 1


def test_accepted_and_rejected_urls_with_one_path_count_once(tmp_path: Path) -> None:
    from feedback_check.logs.query import query_for_shop
    from feedback_check.profile import LogSpec

    paths = (FeedbackPath("/postfinance/feedback", "https://shop.example/postfinance/feedback?s=a", "accepted",
                          "shop.example"),
             FeedbackPath("/postfinance/feedback", "https://shop.example/postfinance/feedback?s=r", "rejected",
                          "shop.example"))
    query = query_for_shop(LogSpec(("x",)), paths, "POST")
    assert len(query.paths) == 1 and query.paths[0].role == "accepted, rejected"
    lines = [combined("185.8.53.17", clf(d, 1)) for d in (10, 12)]
    summary = run([write(tmp_path, "a.log", lines)], query)
    assert "logs.no_postsale" not in codes(summary) and summary.verdict is Verdict.OK


def test_rare_urls_without_requests_prove_nothing(tmp_path: Path) -> None:
    paths = (FeedbackPath("/postfinance/feedback", "https://shop.example/postfinance/feedback", "accepted"),
             FeedbackPath("/postfinance/cancel", "https://shop.example/postfinance/cancel", "rejected"),
             FeedbackPath("/postfinance/status", "https://shop.example/postfinance/status", "status_change"))
    lines = [combined("185.8.53.17", clf(d, 1)) for d in (10, 12)]
    summary = run([write(tmp_path, "a.log", lines)], LogQuery(paths=paths))
    by_target = {(f.code, f.target): f.severity for f in summary.findings}
    assert by_target[("logs.no_postsale", "https://shop.example/postfinance/cancel")] is Severity.INFO
    assert by_target[("logs.no_postsale", "https://shop.example/postfinance/status")] is Severity.INFO
    assert summary.verdict is Verdict.OK


def test_durations_must_be_longer_than_zero_but_zero_ago_is_now() -> None:
    from feedback_check.logs.timespec import parse_duration, parse_time
    with pytest.raises(ValueError, match="no time at all"):
        parse_duration("0m")
    now = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    assert parse_time("0s", now=now) == now


def test_outside_window_names_what_the_logs_cover(tmp_path: Path) -> None:
    log = write(tmp_path, "access.log", [combined("185.8.53.17", clf(10, 14)), combined("185.8.53.17", clf(11, 14))])
    since = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with pytest.raises(UsageError, match=r"no log line in the requested window from 2026-12-01 00:00 UTC on: "
                                         r"the logs read cover 2026-11-10 13:00 – 2026-11-11 13:00 UTC"):
        run([log], LogQuery(paths=FEEDBACK, since=since))
    inside = run([log], LogQuery(paths=FEEDBACK, since=dt.datetime(2026, 11, 11, tzinfo=dt.UTC)))
    assert inside.evidence.coverage == dt.timedelta(hours=13)


def test_truncated_gzip_drops_the_cut_line_and_keeps_the_last_time(tmp_path: Path) -> None:
    from feedback_check.logs.reading import LogSource
    rows = [combined("185.8.53.17", clf(10, h % 24, h // 24)) for h in range(400)]
    data = gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=9)
    path = tmp_path / "access.log.1.gz"
    path.write_bytes(data[: len(data) // 2])
    source = LogSource(str(path))
    lines = [ln for chunk in source.chunks() for ln in chunk]
    assert lines and all(ln.endswith(b'"Java/1.8"') for ln in lines)            # no half line
    [problem] = source.problems
    assert problem.kind == "truncated" and problem.line == len(lines) + 1
    summary = run([path])
    [f] = summary.evidence.files
    assert f.first_time is not None and f.last_time is not None and f.last_time > f.first_time
    [unreadable] = [x for x in summary.findings if x.code == "logs.unreadable"]
    assert unreadable.detail.startswith(f"{path} is truncated after line {len(lines)}: ")
    assert "copy it again" in unreadable.fix and "--log-format" not in unreadable.fix
    assert unreadable.evidence["truncated"] == [f"{path}:{len(lines) + 1}"]


def test_truncation_is_named_even_after_many_bad_lines(tmp_path: Path) -> None:
    good = [combined("185.8.53.17", clf(10, h % 24)) for h in range(300)]
    rows = good[:60] + ["185.8.53.17 garbage"] * 30 + good[60:]
    data = gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=9)
    path = tmp_path / "access.log.2.gz"
    path.write_bytes(data[: len(data) * 3 // 4])
    [unreadable] = [x for x in run([path]).findings if x.code == "logs.unreadable"]
    assert "is truncated after line" in unreadable.detail and "30 lines could not be read" in unreadable.detail
    assert "copy it again" in unreadable.fix and "--log-format" in unreadable.fix


def test_failed_count_and_exact_answer_time_total(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                       '"$http_referer" "$http_user_agent" $request_time')
    rows = [combined("185.8.53.17", clf(10, 1), status=200) + " 0.25", combined("185.8.53.17", clf(10, 2), status=499)
            + " 20.5", combined("185.8.53.17", clf(10, 3), status=302) + " 0.25"]
    log = write(tmp_path, "access.log", rows)
    summary = run([log], LogQuery(paths=FEEDBACK, formats=(fmt,)))
    [path] = summary.evidence.paths
    assert path.published.failed == 1
    assert path.timing is not None and path.timing.count == 3 and path.timing.total == pytest.approx(21.0)


def test_outside_window_between_two_times_and_before_one_and_without_times(tmp_path: Path) -> None:
    log = write(tmp_path, "access.log", [combined("185.8.53.17", clf(10, 14))])
    window = LogQuery(paths=FEEDBACK, since=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
                      until=dt.datetime(2026, 12, 2, 6, 30, tzinfo=dt.UTC))
    with pytest.raises(UsageError, match=r"window 2026-12-01 00:00 UTC – 2026-12-02 06:30 UTC: the logs read cover "
                                         r"2026-11-10 13:00 – 2026-11-10 13:00 UTC"):
        run([log], window)
    with pytest.raises(UsageError, match=r"window up to 2026-11-01 00:00 UTC:"):
        run([log], LogQuery(paths=FEEDBACK, until=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    timeless = nginx_format('$remote_addr "$request" $status')
    untimed = write(tmp_path, "untimed.log", ['185.8.53.17 "POST /postfinance/feedback HTTP/1.1" 200'])
    with pytest.raises(UsageError, match=r"record no time that could be read, so the window up to 2026-11-01 00:00 UTC"):
        run([untimed], LogQuery(paths=FEEDBACK, log_format=timeless.definition,
                                until=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))


@pytest.mark.parametrize(("definition", "missing"), [
    ('[$time_local] "$request" $status', "client address"),
    ('$remote_addr [$time_local] "$request"', "status"),
    ('$remote_addr [$time_local] $status', "request path"),
])
def test_a_log_format_without_client_status_or_path_is_refused(definition: str, missing: str) -> None:
    with pytest.raises(ConfigError, match=f"does not log the {missing}"):
        nginx_format(definition)


def test_a_stranger_behind_a_trusted_proxy_without_a_forwarding_header_is_counted(tmp_path: Path) -> None:
    fmt = nginx_format('$remote_addr [$time_local] "$request" $status "$http_x_forwarded_for"')
    lines = [f'198.51.100.7 [{clf(10, 10)}] "POST /postfinance/feedback HTTP/1.1" 200 "-"',
             f'198.51.100.7 [{clf(10, 11)}] "POST /postfinance/feedback HTTP/1.1" 200 "203.0.113.9"']
    log = write(tmp_path, "access.log", lines)
    summary = run([log], LogQuery(paths=FEEDBACK, log_format=fmt.definition,
                                  trusted=TrustedProxies.parse(["198.51.100.0/24"])))
    foreign = summary.evidence.paths[0].foreign
    assert foreign.count == 2 and foreign.proxied_without_header == 1
