"""Evidence from the web server's access logs: the post-sales PostFinance's own addresses really sent.

Data flow::

    files (rotated, gzip, stdin) --reading--> raw lines --sources.Prefilter--> candidate lines
        --formats.LineFormat--> LogRecord --analysis--> LogEvidence --judgement--> logs.* findings

`reading` streams every file in bounded chunks (never a whole file in memory); `formats` turns a log
format (a preset, the server's own `log_format` / `LogFormat` definition, JSON lines, AWS ALB) into a
parser; `sources` decides who is PostFinance (published ranges, the 2019 senders, trusted proxies) and
skips the other lines before they are parsed; `analysis` aggregates per feedback path; `judgement`
turns the evidence into findings; `render` gives the text report's lines.
"""
