#!/usr/bin/env python3
"""report_check.py — checks a report.html in a real headless browser (Debian's chromium).

Usage: report_check.py CHROMIUM DIR
  1. report.html is self-contained: no src/href to another file or host.
  2. Loaded by itself (--dump-dom after its script ran): <body data-ready="1">, no data-errors,
     and no console error or uncaught exception in chromium's log.
  3. The tables hold the sweep's numbers: table#cells has one row per summary.csv row, and every
     numeric cell's data-v equals summary.csv's value for that column (17 significant digits).
  4. Sorting works: a harness page loads the report in an iframe, clicks the first perplexity
     header and reads the column back; it must be ascending (descending after a second click).
  5. A screenshot (DIR/report.png) is written and is a PNG.
Exits non-zero with the reasons on failure.
"""
import csv
import html.parser
import os
import re
import subprocess
import sys
import tempfile

chromium, d = sys.argv[1], sys.argv[2]
page = os.path.join(os.path.abspath(d), "report.html")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
         "--user-data-dir=" + tempfile.mkdtemp()]
bad = []


def run(args):
    p = subprocess.run([chromium] + FLAGS + args, capture_output=True, text=True, timeout=120)
    errs = [l for l in p.stderr.splitlines() if re.search(r"CONSOLE.*(error|Error)|Uncaught", l)]
    return p.stdout, errs


src = open(page, encoding="utf-8").read()
ext = re.findall(r"""(?:src|href)\s*=\s*["']([^"'#][^"']*)""", src)
if ext:
    bad.append(f"not self-contained: {ext[:3]}")


class Cells(html.parser.HTMLParser):
    """Rows of table#cells: [(text, data-v)] per cell; the header texts."""

    def __init__(self):
        super().__init__()
        self.in_table = False
        self.head, self.rows, self.cur, self.cell = [], [], None, None
        self.body = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table" and a.get("id") == "cells":
            self.in_table = True
        if not self.in_table:
            return
        if tag == "tr":
            self.cur = []
        if tag in ("td", "th"):
            self.cell = [tag, "", a.get("data-v")]

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag):
        if not self.in_table:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.cur.append(self.cell)
            self.cell = None
        if tag == "tr" and self.cur is not None:
            if self.cur and self.cur[0][0] == "th":
                self.head = [c[1] for c in self.cur]
            else:
                self.rows.append(self.cur)
            self.cur = None
        if tag == "table":
            self.in_table = False


dom, errs = run(["--dump-dom", "file://" + page])
p = Cells()
p.feed(dom)
if p.body.get("data-ready") != "1":
    bad.append(f"the page's script did not finish (body {p.body})")
if p.body.get("data-errors"):
    bad.append(f"script errors: {p.body['data-errors']}")
bad += [f"console: {e}" for e in errs]

rows = list(csv.DictReader(open(os.path.join(d, "summary.csv"))))
if len(p.rows) != len(rows):
    bad.append(f"table#cells has {len(p.rows)} rows, summary.csv {len(rows)}")
# The summary.csv column behind each numeric header (one dataset: plain perplexity/kl_divergence).
several = any(k.startswith("perplexity[") for k in (rows[0] if rows else {}))


def csv_column(h):
    for pre, metric in (("ppl ", "perplexity"), ("KL ", "kl_divergence"), ("acc_llamacpp ", "acc_llamacpp"),
                        ("acc_norm ", "acc_norm"), ("acc ", "acc")):
        if h.startswith(pre):
            name = h[len(pre):]
            return f"{metric}[{name}]" if several or metric.startswith("acc") else metric
    return {"bits/weight": "bits_per_weight", "size (MB)": "model_bytes", "seconds": "seconds"}.get(h)


by_id = {r["id"]: r for r in rows}
hid = p.head.index("id") if "id" in p.head else -1
checked = 0
for j, h in enumerate(p.head):
    col = csv_column(h)
    if col is None:
        continue
    scale = 1e-6 if col == "model_bytes" else 1.0
    for cells in p.rows:
        r = by_id.get(cells[hid][1]) if hid >= 0 else None
        if r is None or col not in r:
            bad.append(f"column {h}: no summary.csv row or column {col}")
            break
        v, want = cells[j][2], r[col]
        if (v or "") == "" and want == "":
            continue
        if v in (None, "") or want == "" or abs(float(v) - float(want) * scale) > 1e-15 * max(1.0, abs(float(want) * scale)):
            bad.append(f"column {h}, cell {r['id']}: page {v!r}, summary.csv {want!r}")
            break
    else:
        checked += 1
if checked < 3:
    bad.append(f"only {checked} numeric columns checked ({p.head})")

# Sorting, through a harness page that clicks the first "ppl" header of the report in an iframe.
harness = os.path.join(tempfile.mkdtemp(), "harness.html")
open(harness, "w").write("""<!DOCTYPE html><html><body><iframe id="f" src="file://%s" width="1200" height="800"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  try {
    var doc = this.contentDocument, t = doc.getElementById('cells');
    var ths = Array.prototype.slice.call(t.tHead.rows[0].cells);
    var th = ths.filter(function (h) { return h.textContent.indexOf('ppl ') === 0; })[0];
    var col = th.cellIndex;
    function values() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return parseFloat(r.cells[col].getAttribute('data-v')); }); }
    th.click(); var up = values(); th.click(); var down = values();
    var asc = up.every(function (v, i) { return i === 0 || up[i - 1] <= v; });
    var desc = down.every(function (v, i) { return i === 0 || down[i - 1] >= v; });
    document.body.setAttribute('data-sort', asc && desc ? 'ok' : 'bad ' + up.join(',') + ' / ' + down.join(','));
  } catch (e) { document.body.setAttribute('data-sort', 'error ' + e); }
});
</script></body></html>""" % page)
dom2, errs2 = run(["--allow-file-access-from-files", "--virtual-time-budget=5000", "--dump-dom", "file://" + harness])
m = re.search(r'data-sort="([^"]*)"', dom2)
if not m or m.group(1) != "ok":
    bad.append(f"sorting by a header click: {m.group(1) if m else 'the harness did not run'}")
bad += [f"console (harness): {e}" for e in errs2]

shot = os.path.join(d, "report.png")
run(["--screenshot=" + shot, "--window-size=1280,2400", "file://" + page])
if not os.path.exists(shot) or open(shot, "rb").read(8) != b"\x89PNG\r\n\x1a\n":
    bad.append("no screenshot")

print("; ".join(bad) if bad else f"report.html: {len(p.rows)} rows, {checked} numeric columns equal summary.csv, "
      f"sorting works, no console errors, screenshot {os.path.getsize(shot)} bytes")
sys.exit(1 if bad else 0)
