# Goal of this test: helpers (no test cases) - a strict parser of the Prometheus text format 0.0.4 and a /metrics fetcher.
"""A strict parser of the Prometheus text exposition format, version 0.0.4, written
against its specification (prometheus.io/docs/instrumenting/exposition_formats, "Text
format details"), plus helpers to fetch /metrics from a running echo-server.

What it enforces (ParseError otherwise):
- UTF-8; lines end in '\\n', the last one included; blank lines are ignored; tokens are
  separated by blanks or tabs; leading and trailing whitespace is ignored.
- '# HELP name docstring' (escapes \\\\ and \\n only) and '# TYPE name type' (counter,
  gauge, histogram, summary, untyped): at most one of each per family, both before the
  family's first sample; other '#' lines are comments.
- A sample: name, optional {label="value",...} (optional trailing comma), a value (a Go
  float: decimal, exponent, +Inf, -Inf, NaN) and an optional int64 millisecond timestamp.
  Metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* not starting
  with '__'; label values escape \\\\, \\" and \\n; no label twice in a sample, no sample
  (name and label set) twice.
- Every family is one contiguous group of lines.
- Counters are not negative; a histogram has _bucket samples with an 'le' label in
  increasing order, cumulative (never decreasing), ending with le="+Inf" equal to _count,
  and one _sum and one _count per label set (a summary: quantile labels, _sum, _count).
This module also requires (a project rule, not the format's) that every family has HELP
and TYPE when require_meta is true."""
import math
import re
import socket
import time

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Inf|inf)$|"
                   r"NaN$|nan$")
TIMESTAMP = re.compile(r"-?[0-9]+$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
BLANKS = " \t"


class ParseError(Exception):
    pass


class Family:
    def __init__(self, name):
        self.name = name
        self.help = None
        self.type = None
        self.samples = []  # (sample name, labels dict, value)

    def value(self, sample=None, **labels):
        """The value of the sample with exactly these labels (name defaults to the family)."""
        want = sample or self.name
        for n, l, v in self.samples:
            if n == want and l == labels:
                return v
        raise KeyError(f"{want}{labels} not in {self.name}")


def parse_float(tok, where):
    if not FLOAT.match(tok):
        raise ParseError(f"{where}: not a float: {tok!r}")
    return float(tok)


def _unescape(s, allowed, where):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in allowed:
                raise ParseError(f"{where}: bad escape in {s!r}")
            out.append({"\\": "\\", "n": "\n", '"': '"'}[s[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _skip_blanks(line, i):
    while i < len(line) and line[i] in BLANKS:
        i += 1
    return i


def _parse_labels(line, i, where):
    """line[i] == '{'. Returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        i = _skip_blanks(line, i)
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_NAME.match(line, i)
        if not m:
            raise ParseError(f"{where}: bad label name at {line[i:i + 20]!r}")
        name = m.group(0)
        if name.startswith("__"):
            raise ParseError(f"{where}: reserved label name {name}")
        if name in labels:
            raise ParseError(f"{where}: label {name} twice")
        i = _skip_blanks(line, m.end())
        if line[i:i + 1] != "=":
            raise ParseError(f"{where}: '=' expected after {name}")
        i = _skip_blanks(line, i + 1)
        if line[i:i + 1] != '"':
            raise ParseError(f"{where}: '\"' expected for {name}")
        j, raw = i + 1, []
        while True:
            if j >= len(line):
                raise ParseError(f"{where}: unterminated label value")
            if line[j] == "\\":
                raw.append(line[j:j + 2])
                j += 2
                continue
            if line[j] == '"':
                break
            raw.append(line[j])
            j += 1
        labels[name] = _unescape("".join(raw), '\\"n', where)
        i = _skip_blanks(line, j + 1)
        if line[i:i + 1] == ",":
            i += 1
        elif line[i:i + 1] != "}":
            raise ParseError(f"{where}: ',' or '}}' expected after label {name}")


def _parse_sample(line, where):
    m = METRIC_NAME.match(line)
    if not m:
        raise ParseError(f"{where}: bad metric name in {line!r}")
    name, i = m.group(0), m.end()
    labels = {}
    if i < len(line) and line[i] not in BLANKS + "{":
        raise ParseError(f"{where}: blank or '{{' expected after {name}")
    i = _skip_blanks(line, i)
    if line[i:i + 1] == "{":
        labels, i = _parse_labels(line, i, where)
    rest = line[i:].split()
    if not rest or len(rest) > 2:
        raise ParseError(f"{where}: expected a value and an optional timestamp: {line!r}")
    value = parse_float(rest[0], where)
    if len(rest) == 2 and not TIMESTAMP.match(rest[1]):
        raise ParseError(f"{where}: bad timestamp {rest[1]!r}")
    return name, labels, value


def _family_of(sample_name, families):
    """The declared family a sample belongs to (histogram/summary suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix):
            base = sample_name[: -len(suffix)]
            f = families.get(base)
            if f is not None and f.type in ("histogram", "summary") and (
                    suffix != "_bucket" or f.type == "histogram"):
                return base
    return sample_name


class _State:
    def __init__(self):
        self.families = {}
        self.order = []
        self.current = None
        self.closed = set()
        self.seen = set()

    def enter(self, name, where):
        if name == self.current:
            return self.families[name]
        if name in self.closed:
            raise ParseError(f"{where}: family {name} is not one contiguous group")
        if self.current is not None:
            self.closed.add(self.current)
        self.current = name
        if name not in self.families:
            self.families[name] = Family(name)
            self.order.append(name)
        return self.families[name]


def _meta_line(st, line, where):
    toks = line[1:].split(None, 2)
    if not toks or toks[0] not in ("HELP", "TYPE"):
        return  # a comment
    if len(toks) < 2 or not METRIC_NAME.fullmatch(toks[1]):
        raise ParseError(f"{where}: bad metric name in {line!r}")
    f = st.enter(toks[1], where)
    if f.samples:
        raise ParseError(f"{where}: {toks[0]} of {f.name} after its samples")
    if toks[0] == "HELP":
        if f.help is not None:
            raise ParseError(f"{where}: second HELP for {f.name}")
        f.help = _unescape(toks[2] if len(toks) > 2 else "", "\\n", where)
    else:
        if f.type is not None:
            raise ParseError(f"{where}: second TYPE for {f.name}")
        if len(toks) != 3 or toks[2].strip() not in TYPES:
            raise ParseError(f"{where}: bad TYPE line {line!r}")
        f.type = toks[2].strip()


def parse(data, require_meta=True):
    """Parses bytes or str; returns {family name: Family} in order of appearance."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ParseError(f"not UTF-8: {e}")
    if data and not data.endswith("\n"):
        raise ParseError("the last line does not end with a line feed")
    st = _State()
    for n, raw in enumerate(data.split("\n")[:-1], 1):
        line = raw.strip(BLANKS)
        where = f"line {n}"
        if not line:
            continue
        if line.startswith("#"):
            _meta_line(st, line, where)
            continue
        name, labels, value = _parse_sample(line, where)
        f = st.enter(_family_of(name, st.families), where)
        key = (name, tuple(sorted(labels.items())))
        if key in st.seen:
            raise ParseError(f"{where}: sample {name}{labels} twice")
        st.seen.add(key)
        f.samples.append((name, labels, value))
    for name in st.order:
        _check_family(st.families[name], require_meta)
    return {name: st.families[name] for name in st.order}


def _check_family(f, require_meta):
    if require_meta and (f.help is None or f.type is None):
        raise ParseError(f"{f.name}: HELP and TYPE required")
    if not f.samples:
        raise ParseError(f"{f.name}: no samples")
    t = f.type or "untyped"
    if t == "counter":
        for n, l, v in f.samples:
            if n != f.name or v < 0 or math.isnan(v):
                raise ParseError(f"{f.name}: bad counter sample {n}{l} {v}")
    elif t == "gauge" or t == "untyped":
        for n, l, v in f.samples:
            if n != f.name:
                raise ParseError(f"{f.name}: sample {n} does not belong to it")
    elif t == "histogram":
        _check_histogram(f)
    elif t == "summary":
        _check_summary(f)


def _group(f, label):
    """Samples by their labels without `label`."""
    groups = {}
    for n, l, v in f.samples:
        rest = tuple(sorted((k, x) for k, x in l.items() if k != label))
        groups.setdefault(rest, []).append((n, l, v))
    return groups


def _check_histogram(f):
    for key, samples in _group(f, "le").items():
        buckets = [(l, v) for n, l, v in samples if n == f.name + "_bucket"]
        sums = [v for n, l, v in samples if n == f.name + "_sum"]
        counts = [v for n, l, v in samples if n == f.name + "_count"]
        others = [n for n, l, v in samples if n not in (f.name + s for s in
                                                        ("_bucket", "_sum", "_count"))]
        if others or len(sums) != 1 or len(counts) != 1 or not buckets:
            raise ParseError(f"{f.name}{dict(key)}: needs buckets, one _sum, one _count "
                             f"(and nothing else: {others})")
        last_le, last_v = -math.inf, 0
        for l, v in buckets:
            if "le" not in l:
                raise ParseError(f"{f.name}: bucket without le")
            le = parse_float(l["le"], f.name)
            if le <= last_le:
                raise ParseError(f"{f.name}: le {l['le']} not increasing")
            if v < last_v:
                raise ParseError(f"{f.name}: bucket le={l['le']} ({v}) below the previous")
            last_le, last_v = le, v
        if last_le != math.inf:
            raise ParseError(f"{f.name}: no le=\"+Inf\" bucket")
        if last_v != counts[0]:
            raise ParseError(f"{f.name}: +Inf bucket {last_v} != _count {counts[0]}")


def _check_summary(f):
    for key, samples in _group(f, "quantile").items():
        names = [n for n, l, v in samples]
        if names.count(f.name + "_sum") != 1 or names.count(f.name + "_count") != 1:
            raise ParseError(f"{f.name}{dict(key)}: one _sum and one _count needed")
        for n, l, v in samples:
            if n == f.name:
                q = parse_float(l.get("quantile", "x"), f.name)
                if not 0 <= q <= 1:
                    raise ParseError(f"{f.name}: quantile {q} out of range")


# ------------------------------------------------------------------------- fetching

def http_get(port, path="/metrics", method="GET", host="127.0.0.1", timeout=10, raw=None):
    """One request on a fresh connection; reads to EOF (the server closes). Returns
    (status, headers dict with lower-case names, body bytes)."""
    req = raw if raw is not None else (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"User-Agent: teardown-tests\r\nAccept: text/plain\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return split_response(b"".join(chunks), head_request=method == "HEAD")


def split_response(data, head_request=False):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ParseError(f"no end of the response head in {data[:200]!r}")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ParseError(f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise ParseError(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    if head_request and body:
        raise ParseError(f"a body after a HEAD request: {body[:100]!r}")
    if not head_request and "content-length" in headers and int(headers["content-length"]) != len(body):
        raise ParseError(f"Content-Length {headers['content-length']} but {len(body)} bytes")
    return int(parts[1]), headers, body


def scrape(port, timeout=10):
    """GET /metrics, checked (200, the 0.0.4 content type) and parsed."""
    status, headers, body = http_get(port, timeout=timeout)
    if status != 200:
        raise AssertionError(f"GET /metrics: status {status}: {body[:200]!r}")
    ctype = headers.get("content-type", "")
    if not ctype.startswith("text/plain; version=0.0.4"):
        raise AssertionError(f"GET /metrics: Content-Type {ctype!r}")
    return parse(body)


def value(families, name, sample=None, **labels):
    if name not in families:
        raise AssertionError(f"no family {name} in /metrics")
    return families[name].value(sample, **labels)


def wait_metrics(port, cond, timeout, what):
    """Scrapes until cond(families) holds (a family it needs that is missing counts as
    not yet); returns the families."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = scrape(port)
        try:
            if cond(last):
                return last
        except (AssertionError, KeyError):
            pass
        if time.monotonic() >= deadline:
            summary = {n: [(s[1], s[2]) for s in f.samples][:12] for n, f in last.items()
                       if not n.startswith("teardown_fin_to_close")}
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last scrape: {summary}")
        time.sleep(0.02)


def start_with_metrics(test, sets=None, prefix=(), **kw):
    """Starts an echo-server (harness.Server) with metrics_listen=127.0.0.1:0 and
    --metrics-port-file, its command after `prefix` (e.g. env VAR=...); returns (server,
    metrics port)."""
    import os
    import shutil
    import tempfile
    from harness import START_TIMEOUT, Server, wait_until
    d = tempfile.mkdtemp(prefix="teardown-metrics-")
    test.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "metrics-port")
    s = {"metrics_listen": "127.0.0.1:0"}
    s.update(sets or {})
    srv = Server(test, sets=s, extra=["--metrics-port-file", path], **kw)
    srv.cmd = list(prefix) + srv.cmd
    srv.start()

    def port():
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None
    return srv, wait_until(port, START_TIMEOUT, f"metrics port file {path}")
