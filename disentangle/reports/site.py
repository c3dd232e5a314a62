"""A static HTML site of a whole study: ``disentangle report --html``.

``write_html_report(runs_dir, out)`` writes ``out/report/index.html`` (the runs table,
sortable and filterable; the summary over seeds; the grid figures) and one page per
run under ``out/report/runs/`` (config, status, training curves, traversals as PNG and
GIF, reconstructions, samples, every metric with its settings and interval). Every
image is a file in the folder and every link relative: no CDN, no server; it opens
from ``file://`` and from any static host. A run's figures are copied from the run's own
``figures`` folder when it drew them as it finished (a grid's default), else drawn here over
the cores; re-running updates the site (a run's figures are redone only when its checkpoint or
log is newer). A run with a corrupt file is listed with its problem.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from disentangle.base import runs
from disentangle.base.files import atomic_path, atomic_write_text, remove_stale_temporaries
from disentangle.base.errors import DisentangleError
from disentangle.metrics import headline_columns, human_name
from disentangle.reports.table import TRAINING_COLUMNS, identity_columns, metric_columns, summarize_long, write_report
from disentangle.lifecycle.run_figures import FIGURE_FILES, draw_run_figures, figures_current
from disentangle.base.validation import without_numeric_warnings
from disentangle.reports.viz.sweeps import sweep_figures

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12.5px;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f4f4f4;cursor:pointer;user-select:none}th[data-order=asc]::after{content:" ▲"}th[data-order=desc]::after{content:" ▼"}
td.l,th.l{text-align:left}tr.failed td{background:#fff0f0}tr.unfinished td{color:#888}.problem{color:#a00}
.filters label{margin-right:1em}img{max-width:100%;border:1px solid #eee;margin:.3em 0}.figs img{max-width:49%}
code{background:#f6f6f6;padding:0 3px}
"""
SCRIPT = """
function cellValue(row, i){const c=row.cells[i];const v=c.dataset.v!==undefined?c.dataset.v:c.textContent.trim();
  const n=parseFloat(v);return (v!==''&&!isNaN(n)&&isFinite(v))?n:v.toLowerCase();}
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
  const table=th.closest('table');const i=Array.prototype.indexOf.call(th.parentNode.children,th);
  const asc=th.dataset.order!=='asc';table.querySelectorAll('th').forEach(function(h){delete h.dataset.order;});
  th.dataset.order=asc?'asc':'desc';const body=table.tBodies[0];const rows=Array.from(body.rows);
  rows.sort(function(a,b){const x=cellValue(a,i),y=cellValue(b,i);
    if(typeof x===typeof y){return (x<y?-1:x>y?1:0)*(asc?1:-1);}return (typeof x==='number'?-1:1)*(asc?1:-1);});
  rows.forEach(function(r){body.appendChild(r);});});});
const PAGE_ROWS=100;let page=0;
function applyFilters(){const wanted={};document.querySelectorAll('select.filter').forEach(function(s){wanted[s.name]=s.value;});
  const search=document.getElementById('search');const q=search?search.value.trim().toLowerCase():'';const matching=[];
  document.querySelectorAll('#runs tbody tr').forEach(function(r){let show=true;
    for(const k in wanted){if(wanted[k]&&r.dataset[k]!==wanted[k]){show=false;}}
    if(show&&q&&r.cells[0].textContent.toLowerCase().indexOf(q)<0){show=false;}
    if(show){matching.push(r);}r.hidden=true;});
  const pages=Math.max(1,Math.ceil(matching.length/PAGE_ROWS));page=Math.max(0,Math.min(page,pages-1));
  matching.slice(page*PAGE_ROWS,(page+1)*PAGE_ROWS).forEach(function(r){r.hidden=false;});
  const info=document.getElementById('page-info');if(info){info.textContent=matching.length+' runs, page '+(page+1)+' of '+pages;}}
function firstPage(){page=0;applyFilters();}
document.querySelectorAll('select.filter').forEach(function(s){s.addEventListener('change',firstPage);});
const searchBox=document.getElementById('search');if(searchBox){searchBox.addEventListener('input',firstPage);}
const prev=document.getElementById('page-prev'),next=document.getElementById('page-next');
if(prev){prev.addEventListener('click',function(){page-=1;applyFilters();});}
if(next){next.addEventListener('click',function(){page+=1;applyFilters();});}
document.querySelectorAll('#runs th').forEach(function(th){th.addEventListener('click',applyFilters);});
if(document.getElementById('runs')){applyFilters();}
"""


def _e(value) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def _number(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.4g}"
    return _e(value)


def _url(segment) -> str:
    """One path segment of a link, percent-encoded (a run named with '#', '?' or '%' still links to its
    page) and then HTML-escaped."""
    from urllib.parse import quote

    return _e(quote(str(segment), safe=""))


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            '<meta name=viewport content="width=device-width,initial-scale=1"><link rel=icon href="data:,">'
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>")


def _status_class(row: dict) -> str:
    status = str(row.get("status") or "")
    if row.get("problem") or status.startswith("failed"):
        return "failed"
    return "" if row.get("finished") else "unfinished"


def _headline(table: pd.DataFrame) -> list[str]:
    return [c for c in (*headline_columns(), *TRAINING_COLUMNS) if c in table.columns]


def _varying(table: pd.DataFrame) -> list[str]:
    """Identity columns whose value differs between runs (what the study sweeps)."""
    return [c for c in identity_columns(table) if table[c].astype(str).nunique() > 1 and c not in ("model", "dataset")]


def _runs_table(table: pd.DataFrame, linked=lambda run_id: True) -> str:
    """The runs table; a run's id links to its page when ``linked(run_id)`` (a page that exists)."""
    varying, metrics = _varying(table), _headline(table)
    head = ["run", "status", "model", "dataset", "seed", *varying, "steps", *metrics]
    labels = [_column_name(c) if c in metrics else c for c in head]
    rows = []
    for number, row in enumerate(table.to_dict("records")):
        steps = f"{_number(row.get('steps_done'))} / {_number(row.get('steps'))}" if row.get("steps") is not None else ""
        name = (f'<a href="runs/{_url(row["run_id"])}.html">{_e(row["run_id"])}</a>' if linked(row["run_id"]) else _e(row["run_id"]))
        cells = [f'<td class=l>{name}</td>',
                 f'<td class=l>{_e(row.get("problem") and "unreadable" or row.get("status"))}</td>',
                 f'<td class=l>{_e(row.get("model"))}</td>', f'<td class=l>{_e(row.get("dataset"))}</td>',
                 f'<td>{_number(row.get("seed"))}</td>', *[f"<td>{_number(row.get(c))}</td>" for c in varying],
                 f'<td data-v="{_number(row.get("steps_done"))}">{steps}</td>', *[f"<td>{_number(row.get(c))}</td>" for c in metrics]]
        status = "failed" if _status_class(row) == "failed" else ("done" if row.get("finished") else "unfinished")
        hidden = " hidden" if number >= PAGE_ROWS else ""  # the first page shows before the script runs
        rows.append(f'<tr class="{_status_class(row)}" data-model="{_e(row.get("model"))}" data-dataset="{_e(row.get("dataset"))}" '
                    f'data-status="{status}"{hidden}>{"".join(cells)}</tr>')
    header = "".join(f'<th class="{"l" if c in ("run", "status", "model", "dataset") else ""}">{_e(label)}</th>' for c, label in zip(head, labels))
    return f'<table id=runs class=sortable><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _column_name(column: str) -> str:
    return {"final_recon": "recon (end)", "final_kl": "KL (end)"}.get(column, human_name(column))


def _filters(table: pd.DataFrame) -> str:
    parts = []
    for name in ("model", "dataset"):
        values = sorted(str(v) for v in table[name].dropna().unique()) if name in table else []
        options = "".join(f"<option>{_e(v)}</option>" for v in values)
        parts.append(f'<label>{name} <select class=filter name={name} id=filter-{name}><option value="">all</option>{options}</select></label>')
    options = "".join(f"<option>{s}</option>" for s in ("done", "failed", "unfinished"))
    parts.append(f'<label>status <select class=filter name=status id=filter-status><option value="">all</option>{options}</select></label>')
    parts.append('<label>run <input id=search type=search placeholder="part of a run id"></label>')
    pager = '<button id=page-prev type=button>← previous</button> <span id=page-info></span> <button id=page-next type=button>next →</button>'
    return f'<p class=filters>{"".join(parts)}</p><p class=pager>{pager}</p>'


def _summary_table(long: pd.DataFrame) -> str:
    if long.empty:
        return "<p>No finished runs to summarise yet.</p>"
    keys = [c for c in long.columns if c not in ("metric", "seeds", "median", "iqr", "min", "max", "mean", "std", "count")]
    varying = [k for k in keys if long[k].astype(str).nunique() > 1] or keys[:1]
    head = "".join(f"<th class=l>{_e(k)}</th>" for k in varying) + "<th class=l>metric</th><th>median</th><th>IQR</th><th>min</th><th>max</th><th>n</th>"
    body = "".join("<tr>" + "".join(f"<td class=l>{_number(r[k])}</td>" for k in varying) + f"<td class=l>{_e(_column_name(r['metric']))}</td>"
                   + "".join(f"<td>{_number(r[s])}</td>" for s in ("median", "iqr", "min", "max")) + f"<td>{r['count']}</td></tr>"
                   for r in long.to_dict("records"))
    return f"<table class=sortable><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _run_page(run_dir: Path, row: dict, site: Path, metrics: list[str], figure_problem: str | None = None) -> str:
    """A run's page; ``metrics``: the study's metric columns (the row shows those it has a value for)."""
    run_id = row["run_id"]
    folder = site / "img" / run_id
    problem = row.get("problem") or figure_problem
    parts = [f'<p><a href="../index.html">← all runs</a></p><h1>{_e(run_id)}</h1>',
             f"<p>status: <b>{_e(row.get('status'))}</b>" + (" (finished)" if row.get("finished") else "") + "</p>"]
    if problem:
        parts.append(f"<p class=problem>{_e(problem)}</p>")
    try:
        config = runs.read_config_data(run_dir)  # through the run folder's gate, as every reader
        parts.append(f"<h2>config</h2><pre>{_e(json.dumps(config, indent=2, sort_keys=True))}</pre>")
    except (DisentangleError, ValueError, TypeError):
        pass
    metrics = [c for c in metrics if _number(row.get(c)) != ""]
    if metrics:
        body = "".join(f"<tr><td class=l>{_e(human_name(c))}</td><td class=l><code>{_e(c)}</code></td><td>{_number(row[c])}</td>"
                       f"<td>{_interval(row, c)}</td><td class=l>{_e(row.get('eval:' + c.partition('.')[0]))}</td></tr>" for c in metrics)
        parts.append("<h2>metrics</h2><table class=sortable><thead><tr><th class=l>metric</th><th class=l>key</th><th>value</th>"
                     f"<th>95% interval</th><th class=l>settings</th></tr></thead><tbody>{body}</tbody></table>")
    images = [name for name in FIGURE_FILES if (folder / name).is_file()]
    if images:
        parts.append("<h2>figures</h2>" + "".join(f'<p><img src="../img/{_url(run_id)}/{_url(name)}" alt="{_e(name)}"></p>' for name in images))
    return _page(run_id, "".join(parts))


def _interval(row: dict, column: str) -> str:
    low, high = row.get(f"{column}.ci_low"), row.get(f"{column}.ci_high")
    return "" if low is None or pd.isna(low) else f"[{low:.4g}, {high:.4g}]"


PAGE_ROWS = 100  # rows of the runs table a page shows (the script's PAGE_ROWS)
STALE_SECONDS = 600  # a figure or page is written in seconds: a temporary this old belongs to a killed report


@without_numeric_warnings
def write_html_report(runs_dir: str | Path = "runs", out: str | Path = "metrics", progress: bool = False,
                      collected: tuple | None = None, data_root: str | Path | None = None, run_figures: bool = True) -> Path:
    """Write the CSVs (see :func:`disentangle.reports.table.write_report`; ``collected`` = its
    ``(table, problems)`` when already written) and the site under ``out/report`` with its own
    PNG figures; return the index path. (The paper figures in ``out`` are
    :func:`disentangle.reports.viz.sweep_figures`' job, in any format.) ``data_root``: where the runs' data set
    files are on this machine (for the traversal figures; default ``$DISENTANGLE_DATA`` or ``datasets/``).
    ``run_figures=False`` draws no run's figures (pages show those already in the site, and the runs' own,
    drawn as they finished, are still copied): a quick site of a big study."""
    start = time.perf_counter()
    table, problems = collected if collected is not None else write_report(runs_dir, out)[::2]
    site = Path(out) / "report"
    remove_stale_temporaries(site, older_than=STALE_SECONDS)  # a killed report's; a live one's are younger
    figures = sweep_figures(table, site / "img") if not table.empty else []
    (site / "runs").mkdir(parents=True, exist_ok=True)
    rows = [row for row in table.to_dict("records") if _page_name(row["run_id"])]
    counts = table["status"].astype(str).str.split(":").str[0].value_counts().to_dict() if not table.empty else {}

    def index(linked) -> None:
        body = [f"<h1>disentangle report</h1><p>{len(table)} runs in <code>{_e(Path(runs_dir).resolve())}</code> — "
                + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + f"; generated {time.strftime('%Y-%m-%d %H:%M')}</p>"]
        if problems:
            body.append("<ul>" + "".join(f"<li class=problem>{_e(p)}</li>" for p in problems) + "</ul>")
        body.append("<h2>runs</h2>" + (_filters(table) + _runs_table(table, linked) if not table.empty else "<p>No runs yet.</p>"))
        body.append("<h2>summary over seeds (finished runs)</h2>" + _summary_table(summarize_long(table)))
        if figures:
            body.append("<h2>figures</h2><div class=figs>" + "".join(f'<img src="img/{_url(f.name)}" alt="{_e(f.stem)}">' for f in figures) + "</div>")
        body.append("<p><small>tables: runs.csv, summary.csv, summary_long.csv beside this folder</small></p>")
        atomic_write_text(site / "index.html", _page("disentangle report", "".join(body)))

    # every moment of the site is whole: the index first, linking only the pages that exist (a stopped report
    # still leaves a site, and no link to a page not yet written), then every page, then the index linking them
    # all; a run's page is rewritten as soon as its figures are in place
    index(lambda run_id: (site / "runs" / f"{run_id}.html").is_file())
    metrics = [c for c in metric_columns(table) if c not in TRAINING_COLUMNS]  # once: a one-row frame per run cost 1 ms each

    def page(row: dict, problem: str | None = None) -> None:
        atomic_write_text(site / "runs" / f"{row['run_id']}.html", _run_page(Path(runs_dir) / row["run_id"], row, site, metrics, problem))

    for row in rows:
        page(row)
    index(lambda run_id: _page_name(run_id) is not None)
    by_id = {row["run_id"]: row for row in rows}
    work = [(Path(runs_dir) / row["run_id"], row, site / "img" / row["run_id"]) for row in rows]
    _draw_figures(work, data_root, progress, draw=run_figures, drawn=lambda run_id, problem: page(by_id[run_id], problem))
    if progress:
        print(f"report: {len(rows)} run pages in {time.perf_counter() - start:.1f} s", flush=True)
    return site / "index.html"


def _page_name(run_id) -> str | None:
    """``run_id`` if it can name a page and an image folder of the site: one path component (it is a run
    folder's own name, never a value read from inside it; checked again where it becomes a path)."""
    name = str(run_id)
    return name if name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name else None


def _figures_needed(run_dir: Path, row: dict, folder: Path) -> str | None:
    """What a run's figures in the site need: "copy" (the run drew its own, current ones), "all" (a
    finished run's, stale or missing), "curves" (an unfinished run's log), or None."""
    if (run_dir / runs.CHECKPOINT).is_file() and row.get("finished") and not row.get("problem"):
        if figures_current(run_dir, folder):
            return None
        return "copy" if figures_current(run_dir) else "all"
    if (run_dir / runs.LOG).is_file() and not runs.drawn_from_current_run(folder / "training_curves.png", run_dir):
        return "curves"
    return None


def _copy_figures(run_dir: Path, folder: Path) -> None:
    """The run's own figures into the site, each file atomically and keeping its time (so it stays current)."""
    for name in FIGURE_FILES:
        source = run_dir / runs.FIGURES / name
        if source.is_file():
            with atomic_path(folder / name) as tmp:
                shutil.copy2(source, tmp)


def _draw_figures(work: list[tuple[Path, dict, Path]], data_root=None, progress: bool = False, draw: bool = True,
                  drawn=lambda run_id, problem: None) -> dict[str, str]:
    """Copy the figures runs drew themselves; with ``draw``, draw every other run's stale or missing
    figures, over the cores when there are several, calling ``drawn(run_id, problem)`` as each run's are
    in place: {run id: problem}. The drawing processes end with this one, even if it is killed."""
    import os

    needs = [(run_dir, folder, kind, row["run_id"]) for run_dir, row, folder in work if (kind := _figures_needed(run_dir, row, folder))]
    for run_dir, folder, _, run_id in (item for item in needs if item[2] == "copy"):
        _copy_figures(run_dir, folder)
        drawn(run_id, None)
    todo = [item for item in needs if item[2] != "copy"] if draw else []
    problems: dict[str, str] = {}
    workers = min(os.cpu_count() or 1, len(todo))
    draws = [((run_dir, folder), {"data_root": data_root, "curves_only": kind == "curves"}, run_id) for run_dir, folder, kind, run_id in todo]
    if workers <= 1:
        results = ((run_id, draw_run_figures(*args, **options)) for args, options, run_id in draws)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded torch
                                   initializer=end_with_parent, initargs=(os.getpid(),))
        futures = {pool.submit(draw_run_figures, *args, **options): run_id for args, options, run_id in draws}
        results = ((futures[f], f.result()) for f in futures)
    try:
        for number, (run_id, problem) in enumerate(results, 1):
            if problem:
                problems[run_id] = problem
            drawn(run_id, problem)
            if progress:
                print(f"report: figures of {run_id} ({number}/{len(todo)})", flush=True)
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    return problems


def end_with_parent(parent_pid: int) -> None:
    """A drawing process's first act: end when the report that started it ends, however it ends (a SIGKILL
    leaves it no chance to stop its pool). Linux tells the child at once (``PR_SET_PDEATHSIG``); elsewhere,
    and for a parent already gone, a watcher thread checks the parent every second."""
    import os
    import signal
    import threading

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
