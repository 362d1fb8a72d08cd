"""The diagnosis stage: phase results of the probe in, findings (findings.md codes) out.

Each phase's result has a status enum; a table per phase maps each status to one small function that
writes that case's finding, its evidence and its fix:

- `connect`: ConnectStatus -> connect.*; the findings across the addresses of one host
  (connect.local_probe, connect.partial, connect.ipv6_failed).
- `tls`: TlsStatus -> tls.handshake_failed / protocol_too_old / weak_cipher_only, each CertProblem ->
  its tls.cert_* finding, then tls.sni_required and tls.cert_expiring.
- `http`: HttpStatus -> http.timeout / protocol_error / connection_reset; an answer's status code
  class -> http.ok, http.redirect, http.forbidden, ...; then http.slow and http.online_body_shown.

- `judgement`: the answers to the follow-up requests compared with the first one (signature.rejected,
  signature.forgery_accepted, handler.unknown_order, http.method_not_allowed); which requests are sent
  is feedback_check.probe.judge's plan.

The functions are pure (no I/O) and keep the order of the findings of one phase fixed: reporters,
goldens and the README samples show them in this order.
"""
