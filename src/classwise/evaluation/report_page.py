"""report.html: one self-contained page (no network, every image embedded) that answers the study's questions
per class: the headline numbers, F1 against class size, a card for each weak class (F1 by subset, size and rank,
the class it is taken for with examples of both, its misclassified images, the diagnosis when there is one), and
the whole per-class table, sortable. Written by the evaluate pipeline; MLflow's artifact view renders it."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from classwise.evaluation.per_class import WEAKEST_FIRST  # noqa: E402

EXAMPLES = 6  # images of a weak class and of its partner, side by side
MISCLASSIFIED = 8  # of each weak class, most confident first
MAX_CARDS = 24  # a 91-class cut can have dozens of weak classes; the table lists every one


@dataclass
class PageInputs:
    title: str
    metrics: dict
    per_class_report: pd.DataFrame
    correlation: dict
    predictions: pd.DataFrame  # id, subset, label, predicted, confidence
    images: np.ndarray  # the dataset's images, N x 32 x 32 x 3 uint8
    ids: list  # the dataset's ids, aligned with images
    class_names: list[str]
    split: pd.DataFrame  # id, label, subset
    misclassified_subset: str = "test"
    diagnosis: pd.DataFrame | None = None  # class_diagnosis.csv, when a diagnosis exists
    label_issues: pd.DataFrame | None = None  # label_issues.csv, when a diagnosis exists
    notes: list[str] = field(default_factory=list)


def _e(value) -> str:
    return html.escape(str(value))


def _data_uri(buffer: io.BytesIO) -> str:
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def png_data_uri(fig: plt.Figure) -> str:
    """A figure as an embedded PNG; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return _data_uri(buffer)


def _thumb(image: np.ndarray, scale: int = 2) -> str:
    buffer = io.BytesIO()
    picture = Image.fromarray(image)
    picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST).save(buffer, format="PNG")
    return _data_uri(buffer)


def _figure_f1_vs_size(report: pd.DataFrame, correlation: dict, carded: list[str]) -> str:
    """F1 against train images; weak classes red and named, the classes with a card named, and the three furthest
    above the fit named too."""
    subset, threshold = correlation["subset"], float(correlation["f1_threshold"])
    rows = report[report["subset"] == subset]
    size, f1 = rows["train_count"].to_numpy(float), rows["f1"].to_numpy(float)
    weak = f1 < threshold
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    ax.scatter(size[~weak], f1[~weak], s=24, alpha=0.65, color="tab:blue", label=f"F1 ≥ {threshold:g}")
    ax.scatter(size[weak], f1[weak], s=30, color="tab:red", label=f"F1 < {threshold:g}")
    ax.axhline(threshold, color="tab:red", linestyle=":", linewidth=1)
    named = set(np.flatnonzero(weak)[np.argsort(f1[weak])][:12])
    named |= set(np.flatnonzero(rows["class"].astype(str).isin(carded).to_numpy()))
    if np.ptp(size) > 0 and len(rows) >= 3:
        slope, intercept = np.polyfit(size, f1, 1)
        xs = np.linspace(size.min(), size.max(), 20)
        ax.plot(xs, slope * xs + intercept, color="grey", linewidth=1,
                label=f"fit, Pearson r = {correlation.get('pearson_r') or 0:.2f}")
        residual = f1 - (slope * size + intercept)
        named |= set(np.argsort(-residual)[:3])  # the classes doing best for their size
    for i in sorted(named):
        ax.annotate(rows["class"].iloc[i], (size[i], f1[i]), xytext=(4, 3), textcoords="offset points", fontsize=8,
                    color="tab:red" if weak[i] else "black")
    margin = max(1.0, 0.04 * np.ptp(size))
    ax.set_xlim(size.min() - margin, size.max() + margin)  # no empty band: the axis ends at the data
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("train images of the class")
    ax.set_ylabel(f"{subset} F1")
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return png_data_uri(fig)


def _headline(inputs: PageInputs) -> str:
    cells = []
    for subset in ("val", "test"):
        m = inputs.metrics.get(subset)
        if not m:
            continue
        for key, label in (("top1", "top-1"), ("macro_f1", "macro-F1"), ("top5", "top-5")):
            if key in m:
                cells.append(f'<div class="num"><b>{m[key]:.1%}</b><span>{subset} {label}</span></div>')
    low = inputs.correlation.get("classes_below_threshold") or []
    cells.append(f'<div class="num"><b>{len(low)}</b><span>classes under F1 '
                 f'{inputs.correlation.get("f1_threshold", 0.5):g} ({_e(inputs.correlation.get("subset"))})</span></div>')
    r = inputs.correlation.get("pearson_r")
    cells.append(f'<div class="num"><b>{"n/a" if r is None else f"{r:.2f}"}</b><span>Pearson r, F1 vs class size'
                 f'</span></div>')
    return '<section class="headline">' + "".join(cells) + "</section>"


def _strip(images: list[str], captions: list[str], alt: str = "") -> str:
    """Thumbnails in a row, each with its caption (none when the caption is empty)."""
    return '<div class="strip">' + "".join(
        f'<figure><img src="{src}" alt="{_e(c or alt)}" width="64" height="64">'
        + (f"<figcaption>{_e(c)}</figcaption>" if c else "") + "</figure>"
        for src, c in zip(images, captions)) + "</div>"


class _Images:
    """Thumbnails of the dataset by class and subset, and of single images by id."""

    def __init__(self, inputs: PageInputs) -> None:
        self.inputs = inputs
        self.row = {image_id: i for i, image_id in enumerate(inputs.ids)}
        self.train = inputs.split[inputs.split["subset"] == "train"]

    def examples(self, label: int, n: int = EXAMPLES) -> list[str]:
        ids = self.train.loc[self.train["label"] == label, "id"].head(n)
        return [_thumb(self.inputs.images[self.row[i]]) for i in ids if i in self.row]

    def of(self, image_id) -> str | None:
        row = self.row.get(image_id)
        return None if row is None else _thumb(self.inputs.images[row])


def _diagnosis_block(inputs: PageInputs, name: str, pictures: _Images) -> str:
    if inputs.diagnosis is None:
        return '<p class="muted">No diagnosis yet: <code>kedro run --pipelines=diagnose</code> tests why.</p>'
    rows = inputs.diagnosis[inputs.diagnosis["class"].astype(str) == name]
    if rows.empty:
        return '<p class="muted">The diagnosis has no row for this class (it was run on other data).</p>'
    row = rows.iloc[0]
    verdict = str(row.get("weak_verdict") or "")
    out = [f'<p><b>Diagnosis</b>{" (" + _e(verdict) + ")" if verdict else ""}: {_e(row.get("evidence", ""))}</p>']
    if inputs.label_issues is not None and len(inputs.label_issues):
        issues = inputs.label_issues[inputs.label_issues["given_class"].astype(str) == name].head(EXAMPLES)
        shown = [(pictures.of(i), f"→ {s}") for i, s in zip(issues["id"], issues["suggested_class"])]
        shown = [(src, c) for src, c in shown if src]
        if shown:
            out.append(f"<p>Suspected label issues filed under {_e(name)} (suggested class):</p>")
            out.append(_strip([s for s, _ in shown], [c for _, c in shown]))
    return "".join(out)


def _card(inputs: PageInputs, name: str, pictures: _Images) -> str:
    report = inputs.per_class_report
    rows = report[report["class"].astype(str) == name].set_index("subset")
    label = inputs.class_names.index(name)
    first = rows.iloc[0]
    by_subset = " · ".join(f"{s} <b>{rows.loc[s, 'f1']:.2f}</b>" for s in ("val", "test", "train") if s in rows.index)
    held = rows.loc[inputs.correlation.get("subset", "val")] if inputs.correlation.get("subset") in rows.index else first
    partner = str(held.get("confused_with") or "")
    n_classes = len(inputs.class_names)
    parts = [f'<article class="card" id="class-{_e(name)}"><h3>{_e(name)}</h3>',
             f'<p>F1 {by_subset} &nbsp;|&nbsp; {int(first["train_count"])} train images, size rank '
             f'{int(first["size_rank"])} of {n_classes} ({_e(first["group"])})</p>']
    if partner:
        plabel = inputs.class_names.index(partner)
        parts.append(f'<p>Most often taken for <b>{_e(partner)}</b> ({held["confused_rate"]:.0%} of its '
                     f'{_e(held.name)} images). Train examples of both:</p>')
        parts.append('<div class="pair"><div><h4>' + _e(name) + "</h4>"
                     + _strip(pictures.examples(label), [""] * EXAMPLES, name) + "</div><div><h4>" + _e(partner)
                     + "</h4>" + _strip(pictures.examples(plabel), [""] * EXAMPLES, partner) + "</div></div>")
    wrong = inputs.predictions[(inputs.predictions["subset"] == inputs.misclassified_subset)
                               & (inputs.predictions["label"] == label)
                               & (inputs.predictions["predicted"] != label)]
    wrong = wrong.sort_values(["confidence", "id"], ascending=[False, True]).head(MISCLASSIFIED)
    if len(wrong):
        shown = [(pictures.of(i), f"{inputs.class_names[p]} {c:.0%}")
                 for i, p, c in zip(wrong["id"], wrong["predicted"], wrong["confidence"])]
        parts.append(f"<p>Its {inputs.misclassified_subset} images predicted as another class "
                     f"(predicted class, confidence):</p>")
        parts.append(_strip([s for s, _ in shown if s], [c for s, c in shown if s]))
    parts.append(_diagnosis_block(inputs, name, pictures))
    parts.append("</article>")
    return "".join(parts)


def _table(report: pd.DataFrame) -> str:
    columns = [c for c in report.columns]
    head = "".join(f'<th data-col="{i}" title="click to sort">{_e(c)}</th>' for i, c in enumerate(columns))
    body = []
    for row in report.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(f'<td data-v="{value}">{value:.3f}</td>')
            elif isinstance(value, (int, np.integer)):
                cells.append(f'<td data-v="{value}">{value}</td>')
            else:
                cells.append(f"<td>{_e(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table id="per-class"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:12px 18px;color:#222}
h1{font-size:22px;margin:6px 0} h2{font-size:18px;margin:22px 0 8px;border-bottom:1px solid #ddd}
h3{margin:0 0 4px;font-size:16px} h4{margin:2px 0;font-size:13px;font-weight:600}
.muted{color:#666} code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
.headline{display:flex;flex-wrap:wrap;gap:10px}
.num{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:110px}
.num b{display:block;font-size:20px} .num span{color:#555;font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 12px}
.pair{display:flex;gap:14px;flex-wrap:wrap}
.strip{display:flex;flex-wrap:wrap;gap:4px}
figure{margin:0;width:64px;text-align:center} figcaption{font-size:10px;overflow:hidden;white-space:nowrap;
text-overflow:ellipsis}
img{image-rendering:pixelated;max-width:100%}
.scroll{max-height:520px;overflow:auto;border:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:12px}
th{position:sticky;top:0;background:#f5f5f5;cursor:pointer;text-align:left;padding:3px 6px;user-select:none}
td{padding:2px 6px;border-top:1px solid #eee} th.sorted-asc::after{content:" ▲"} th.sorted-desc::after{content:" ▼"}
"""

SORT_SCRIPT = """
document.querySelectorAll('#per-class th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
    var asc = !th.classList.contains('sorted-asc');
    table.querySelectorAll('th').forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col], y = b.cells[col];
      var d = (x.dataset.v !== undefined && y.dataset.v !== undefined)
        ? (+x.dataset.v - +y.dataset.v) : x.textContent.localeCompare(y.textContent);
      return asc ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def report_page(inputs: PageInputs) -> str:
    """The whole page as one HTML string."""
    report, correlation = inputs.per_class_report, inputs.correlation
    subset, threshold = correlation.get("subset", "val"), float(correlation.get("f1_threshold", 0.5))
    held = report[report["subset"] == subset].sort_values(WEAKEST_FIRST, kind="stable")
    weak = held[held["f1"] < threshold]
    if len(weak):
        heading = f"Weak classes: F1 under {threshold:g} on {subset} ({len(weak)})"
        chosen = weak.head(MAX_CARDS)
        if len(weak) > MAX_CARDS:
            heading += f", the {MAX_CARDS} weakest shown; the table lists every class"
    else:
        heading = f"No class under F1 {threshold:g} on {subset}; the three weakest"
        chosen = held.head(3)
    pictures = _Images(inputs)
    cards = "".join(_card(inputs, str(name), pictures) for name in chosen["class"])
    notes = "".join(f"<li>{_e(n)}</li>" for n in inputs.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(inputs.title)}</title><style>{STYLE}</style></head><body>
<h1>{_e(inputs.title)}</h1>
<ul class="muted">{notes}</ul>
{_headline(inputs)}
<h2>F1 against class size ({_e(subset)})</h2>
<img id="f1-vs-size" src="{_figure_f1_vs_size(report, correlation, [str(c) for c in chosen["class"]])}"
 alt="F1 against train images per class"
 style="max-width:760px;width:100%">
<h2 id="weak">{_e(heading)}</h2>
<div class="cards">{cards}</div>
<h2>Every class ({len(held)} classes; click a column to sort)</h2>
<div class="scroll">{_table(report)}</div>
<script>{SORT_SCRIPT}</script>
</body></html>
"""


NO_EVALUATION = "No trained model has been evaluated on this data yet: run <code>kedro run</code> (the train pipeline)"
OLD_EVALUATION = ("The saved evaluation was written by an earlier Classwise, without the columns this page reads: "
                  "run <code>kedro run --pipelines=evaluate</code> (seconds, no training)")


def no_evaluation_page(diagnosis: pd.DataFrame, why: str = NO_EVALUATION) -> str:
    """The page when a diagnosis exists but no usable evaluation of a trained model does (``why``)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Classwise report</title><style>{STYLE}</style></head><body>
<h1>Classwise report</h1>
<p>{why} for the
headline numbers and a card for each weak class, with this diagnosis of {len(diagnosis)} classes on them.
The diagnosis itself is in <code>class_diagnosis.csv</code> and <code>label_issues.csv</code> beside this page.</p>
</body></html>
"""
