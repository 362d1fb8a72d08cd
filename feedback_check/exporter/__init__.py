"""`feedback-check serve`: a Prometheus exporter in the manner of blackbox_exporter.

Prometheus schedules the checks and spreads them over exporters; each scrape of ``/probe`` runs (or
answers from the cache) one check and returns the same metric families as ``--format prometheus``:

- ``GET /probe?shop=NAME``: the post-sale URLs of one shop of the loaded profiles;
- ``GET /probe?shop=NAME&module=firewall``: that shop's firewall analysis (its own module: it reads local
  rule files and costs CPU, not network);
- ``GET /probe?target=URL&module=NAME``: one URL with the settings of a module of the profile's
  ``modules:`` section (method, timing, role, algorithm, encoding, parameters, CA bundle, lab, forgery
  check, passphrase). The URL must be listed in the module's ``targets``: the exporter signs simulated
  post-sales only for configured shops and targets, it is never an open signer;
- ``GET /metrics``: the exporter's own metrics; ``POST /-/reload`` (or SIGHUP): reload the profiles, a bad
  reload keeps the loaded ones.

Secrets stay server-side (environment, file, systemd credential); no query parameter can carry one (an
unknown parameter is refused). Every probe posts simulated orders to a live shop, so a result is reused
for ``min_interval`` seconds (default 60) per shop/target and module, whatever the scrape interval.

Modules: `config.py` (profiles + modules, reload), `probes.py` (running and caching probes), `server.py`
(HTTP, own metrics).
"""
