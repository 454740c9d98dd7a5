"""estafette-bench report: a run's result.json (the shared result format of `relay` and
`loopback`) turned into OUT/runs.csv (one row per run, the summary's keys as columns) and
OUT/report.html: one self-contained page, no script and no network, with inline SVG plots drawn
here (throughput over time, latency CDF, CPU per process group) that any browser opens.
Also the summary lines the commands print (`NAME: key=value ...`, then `ratios: ...`).
"""
import argparse
import csv
import html
import json
import math
import os
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
FIRST_KEYS = ["msgs_per_s", "lost", "messages", "delivered", "seconds", "p50_ms", "p90_ms",
              "p99_ms", "connections"]


def add_arguments(p):
    p.add_argument("result", metavar="RESULT.json")
    p.add_argument("--out", help="where runs.csv and report.html go (default: RESULT's directory)")


def run(args):
    try:
        with open(args.result) as f:
            result = json.load(f)
    except (OSError, ValueError) as e:
        print("estafette-bench report: %s: %s" % (args.result, e), file=sys.stderr)
        return 2
    out = args.out or os.path.dirname(os.path.abspath(args.result))
    os.makedirs(out, exist_ok=True)
    csv_path, html_path = write(result, out)
    for line in summary_lines(result):
        print(line)
    print("report: %s %s" % (csv_path, html_path))
    return 0


def format_value(v):
    if isinstance(v, float):
        return ("%.3f" % v).rstrip("0").rstrip(".") if v == v else "nan"
    return str(v).replace(" ", "_")


def summary_keys(result):
    """The summary keys of all runs: the common ones first, then the others as they come."""
    keys = [k for k in FIRST_KEYS if any(k in r["summary"] for r in result["runs"])]
    for r in result["runs"]:
        keys += [k for k in r["summary"] if k not in keys]
    return keys


def summary_lines(result):
    """One `NAME: key=value ...` line per run (the summary's keys, msgs_per_s and lost first),
    and `ratios: key=value ...` when the result has ratios (spaces in keys become _)."""
    lines = []
    for r in result["runs"]:
        s = r["summary"]
        keys = [k for k in FIRST_KEYS if k in s] + [k for k in s if k not in FIRST_KEYS]
        lines.append("%s: %s" % (r["name"], " ".join("%s=%s" % (k, format_value(s[k]))
                                                       for k in keys)))
    if result.get("ratios"):
        lines.append("ratios: " + " ".join("%s=%s" % (k.replace(" ", "_"), format_value(v))
                                           for k, v in result["ratios"].items()))
    return lines


def write_csv(result, path):
    keys = summary_keys(result)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name"] + keys)
        for r in result["runs"]:
            w.writerow([r["name"]] + [r["summary"].get(k, "") for k in keys])


def nice_ticks(lo, hi, count=5):
    """About `count` round tick values (1, 2, 5 times a power of ten) from at or below lo to at
    or above hi."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    ticks = [math.floor(lo / step) * step]
    while ticks[-1] < hi - step * 1e-9:
        ticks.append(ticks[-1] + step)
    return [round(t, 10) for t in ticks]


def thin(points, limit=600):
    """At most about `limit` points, evenly taken, the last always kept."""
    if len(points) <= limit:
        return points
    step = len(points) / limit
    return [points[int(i * step)] for i in range(limit)] + [points[-1]]


def line_chart(chart_id, title, series, x_label, y_label, log_x=False):
    """An SVG line chart: series [(label, [(x, y)])], axes with ticks, a legend. log_x: the x
    axis is logarithmic (values <= 0 are left out)."""
    width, height, left, right, top, bottom = 720, 320, 70, 170, 30, 45
    pw, ph = width - left - right, height - top - bottom
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    pts = [(fx(x), y) for _, s in series for x, y in s if not log_x or x > 0]
    xs, ys = [p[0] for p in pts] or [0, 1], [p[1] for p in pts] or [0, 1]
    x_lo, x_hi = min(xs), max(xs)
    if log_x:
        x_lo, x_hi = math.floor(x_lo), math.ceil(x_hi)
        x_ticks = list(range(int(x_lo), int(x_hi) + 1))
    else:
        x_ticks = nice_ticks(min(0, x_lo), x_hi)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
    y_ticks = nice_ticks(min(0, min(ys)), max(ys))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    y_hi = y_hi if y_hi > y_lo else y_lo + 1

    def px(x):
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y):
        return top + ph - (y - y_lo) / (y_hi - y_lo) * ph

    e = html.escape
    svg = ['<svg id="%s" class="plot" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" role="img" aria-label="%s">' % (e(chart_id), width, height,
                                                                  width, height, e(title)),
           '<text x="%d" y="18" font-weight="bold">%s</text>' % (left, e(title)),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
           % (left, top, pw, ph)]
    for t in x_ticks:
        label = ("%g" % (10 ** t)) if log_x else "%g" % t
        svg.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>'
                   % (px(t), top, px(t), top + ph))
        svg.append('<text x="%.1f" y="%d" text-anchor="middle" font-size="11">%s</text>'
                   % (px(t), top + ph + 15, label))
    for t in y_ticks:
        svg.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>'
                   % (left, py(t), left + pw, py(t)))
        svg.append('<text x="%d" y="%.1f" text-anchor="end" font-size="11">%g</text>'
                   % (left - 5, py(t) + 4, t))
    svg.append('<text x="%d" y="%d" text-anchor="middle" font-size="12">%s</text>'
               % (left + pw // 2, height - 8, e(x_label)))
    svg.append('<text x="14" y="%d" text-anchor="middle" font-size="12" '
               'transform="rotate(-90 14 %d)">%s</text>' % (top + ph // 2, top + ph // 2,
                                                            e(y_label)))
    for i, (label, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        drawn = [(px(fx(x)), py(y)) for x, y in thin(points) if not log_x or x > 0]
        if drawn:
            d = "M" + " L".join("%.1f,%.1f" % p for p in drawn)
            svg.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.8"/>' % (d, colour))
        ly = top + 12 + 16 * i
        svg.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                   % (left + pw + 10, ly - 4, left + pw + 28, ly - 4, colour))
        svg.append('<text x="%d" y="%d" font-size="11">%s</text>' % (left + pw + 32, ly, e(label)))
    svg.append("</svg>")
    return "\n".join(svg)


def throughput_series(run):
    """[(t, delivered msgs/s over the interval ending at t)] from the run's timeline."""
    points, prev = [], (0.0, 0)
    for t, _, delivered in run.get("timeline", []):
        dt = t - prev[0]
        if dt > 0:
            points.append((t, (delivered - prev[1]) / dt))
            prev = (t, delivered)
    return points


def cdf_series(latencies):
    """[(latency ms, fraction of messages at or below it)], ascending."""
    values = sorted(latencies)
    n = len(values)
    return [(v, (i + 1) / n) for i, v in enumerate(values)]


def cpu_series(run):
    """{group: [(t, percent of one CPU)]} from the run's cpu samples."""
    groups = {}
    for t, row in run.get("cpu", []):
        for g, v in row.items():
            groups.setdefault(g, []).append((t, v))
    return groups


def render_html(result):
    e = html.escape
    runs = result["runs"]
    keys = summary_keys(result)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>estafette-bench %s</title>" % e(result.get("command", "")),
             "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "th:first-child,td:first-child{text-align:left}svg{display:block;margin:1em 0}"
             "</style></head><body>",
             "<h1>estafette-bench %s</h1>" % e(result.get("command", "")),
             "<p>Parameters: %s</p>" % e(" ".join("%s=%s" % (k, v) for k, v in
                                                 result.get("params", {}).items())),
             '<table id="summary"><tr><th>run</th>%s</tr>' % "".join(
                 "<th>%s</th>" % e(k) for k in keys)]
    for r in runs:
        parts.append("<tr><td>%s</td>%s</tr>" % (e(r["name"]), "".join(
            "<td>%s</td>" % e(format_value(r["summary"].get(k, ""))) for k in keys)))
    parts.append("</table>")
    if result.get("ratios"):
        parts.append("<p>Ratios: %s</p>" % e(", ".join("%s = %s" % (k, format_value(v))
                                                       for k, v in result["ratios"].items())))
    parts.append("<h2>Throughput over time</h2>")
    parts.append(line_chart("throughput", "Delivered messages per second",
                            [(r["name"], throughput_series(r)) for r in runs],
                            "seconds since the start", "msgs/s"))
    parts.append("<h2>Latency (send to arrival at the sink)</h2>")
    parts.append(line_chart("latency", "Latency CDF",
                            [(r["name"], cdf_series(r.get("latencies_ms", []))) for r in runs],
                            "latency (ms, log scale)", "fraction of messages", log_x=True))
    parts.append("<h2>CPU</h2>")
    for i, r in enumerate(runs):
        parts.append(line_chart("cpu-%d" % i, "CPU: %s" % r["name"],
                                sorted(cpu_series(r).items()), "seconds since the start",
                                "% of one CPU"))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(result, out_dir):
    """Writes out_dir/runs.csv and out_dir/report.html; returns their paths."""
    csv_path = os.path.join(out_dir, "runs.csv")
    html_path = os.path.join(out_dir, "report.html")
    write_csv(result, csv_path)
    with open(html_path, "w") as f:
        f.write(render_html(result))
    return csv_path, html_path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="report.py")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
