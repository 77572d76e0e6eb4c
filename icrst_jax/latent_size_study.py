"""The latent-size study: one grid per bottleneck width, compared side by side.

Section 7 of the paper conjectures that TRST's gains (Tables 2-3) would show
on complex data "with a more 'aggressive' bottleneck". A study with
``StudyConfig.latent_sizes = (L1, L2, ...)`` runs, for each L, the same grid
with ``train.model.latent_size = L`` (:func:`size_config`) through the shared
stages (:func:`icrst_jax.stages.run_pipeline`) into the subfolder
``latent_size<L>`` of the study's folder: each width is its own compiled
program (the parameter shapes differ), checkpoint, ``results.json`` and
``report.md``. :func:`combine` then reads their ``results.json`` and writes,
in the study's folder, ``latent_sizes.md`` (score per mode against latent
size, final training loss, MI, purity), ``<metric>_vs_latent_size.png`` and
``results.json`` (every width's records, each with its ``latent_size``).

    python -m experiments.run --config configs/cpu_bottleneck_digits.py
    python -m experiments.run --config configs/cpu_digits.py --set latent_sizes=2,8,32
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from icrst_jax import distributed, reporting, run_identity, stages
from icrst_jax.config import StudyConfig
from icrst_jax.models import check_widths
from icrst_jax.reporting.console import comparison_table
from icrst_jax.reporting.latent_sizes import render_latent_sizes, rows_by_size
from icrst_jax.reporting.records import SCHEMA_VERSION
from icrst_jax.reporting.rows import plain_row_label

KIND = "latent_size"
RESULTS = "results.json"
TABLE = "latent_sizes.md"


def size_dir(out: Path, latent_size: int) -> Path:
    """``<study folder>/latent_size<L>``: the folder of one width's grid."""
    return Path(out) / f"latent_size{int(latent_size)}"


def size_config(cfg: StudyConfig, latent_size: int, out: Path) -> StudyConfig:
    """The study ``cfg`` with one bottleneck width: ``train.model.latent_size``
    set, no latent-size axis, written into :func:`size_dir`."""
    model = dataclasses.replace(cfg.train.model, latent_size=int(latent_size))
    return cfg.replace(latent_sizes=(), train=cfg.train.replace(model=model), out=str(size_dir(out, latent_size)))


def dry_check(cfg: StudyConfig, *, num_devices: int | None = None) -> dict:
    """Checks every width's model without data or compilation; what each would run.

    Raises:
      ValueError: a width that empties a layer, or a model that does not fit the data.
    """
    cfg.check_model_fits_data()
    cfg.check_eval_epochs()
    out = run_identity.out_dir(cfg)
    shape, n_train = stages.sample_shape(cfg)
    per_size = {}
    for size in cfg.latent_sizes:
        sized = size_config(cfg, size, out)
        check_widths(sized.train.model)
        per_size[str(size)] = stages.model_summary(sized, shape, n_train, num_devices=num_devices)
    first = per_size[str(cfg.latent_sizes[0])]
    return {"study": KIND, "dataset": cfg.data.name, "latent_sizes": list(cfg.latent_sizes), **first,
            "latent_shape": {size: s["latent_shape"] for size, s in per_size.items()},
            "params": {size: s["params"] for size, s in per_size.items()}}


def run(cfg: StudyConfig, *, progress: Callable[[str], None] | None = None, dataset=None,
        command: str | None = None, hooks: Sequence = ()) -> dict:
    """Runs every latent size of ``cfg.latent_sizes`` as its own grid, then :func:`combine`.

    Same arguments and errors as :func:`icrst_jax.stages.run_pipeline`; the
    study's folder is locked and identified like any study's, and a rerun
    resumes each width from its own checkpoint. Every width is checked before
    the first one trains.

    Returns:
      The combined payload (:func:`combine`).
    """
    say = progress or (lambda line: None)
    out = run_identity.out_dir(cfg)
    sized = [size_config(cfg, size, out) for size in cfg.latent_sizes]
    for v in sized:
        check_widths(v.train.model)

    def run_all() -> dict:
        for size, v in zip(cfg.latent_sizes, sized):
            say(f"=== latent size {size}: {v.out}")
            stages.run_pipeline(v, Path(v.out), progress=progress, dataset=dataset, command=command, hooks=hooks)
        if not distributed.is_primary():
            return {}
        combined = combine(out, cfg.latent_sizes)
        say(f"wrote {out / TABLE} and {out / RESULTS}")
        return combined

    if not distributed.is_primary():
        return run_all()
    with run_identity.claim_folder(out, cfg):
        return run_all()


def outputs(cfg: StudyConfig) -> list[Path]:
    """The files a finished study leaves for a reader: results.json and latent_sizes.md."""
    out = run_identity.out_dir(cfg)
    return [out / RESULTS, out / TABLE]


table = comparison_table


def _load(out: Path, latent_sizes: Sequence[int]) -> list[dict]:
    payloads = []
    for size in latent_sizes:
        path = size_dir(out, size) / RESULTS
        if not path.is_file():
            raise FileNotFoundError(f"no {RESULTS} for latent size {size}: {path} (run the study first)")
        payloads.append(json.loads(path.read_text()))
    return payloads


def combine(out, latent_sizes: Sequence[int]) -> dict:
    """Reads each width's ``results.json`` under ``out`` and writes the side-by-side report.

    Writes ``results.json`` (every width's records, each with its
    ``latent_size``), the figure ``<metric>_vs_latent_size.png`` (one panel per
    classifier, one line per mode and p, the interval shaded) and
    ``latent_sizes.md``, the tables that
    :func:`icrst_jax.reporting.latent_sizes.render_latent_sizes` writes from
    that results.json.

    Returns:
      ``{"dataset", "metric", "latent_sizes", "schema_version", "folders", "records",
      "diverged", "figures", "versions"}``: ``records`` are every width's records, each
      with its ``latent_size``, so :func:`icrst_jax.reporting.console.comparison_table`
      prints them.

    Raises:
      FileNotFoundError: a width has no ``results.json``.
    """
    out = Path(out)
    sizes = [int(s) for s in latent_sizes]
    payloads = _load(out, sizes)
    metric, dataset = payloads[0]["metric"], payloads[0]["dataset"]
    records = [{**rec, "latent_size": s} for s, p in zip(sizes, payloads) for rec in p["records"]]
    figure = plot_vs_latent_size(rows_by_size(records), sizes, list(records[0]["classifiers"]), metric,
                                 out / f"{metric}_vs_latent_size.png",
                                 title=f"{dataset}: held-out {reporting.METRIC_LABELS.get(metric, metric)} "
                                       f"against latent size",
                                 majority=majority_share(size_dir(out, sizes[0])) if metric == "accuracy" else None)
    combined = {
        "dataset": dataset,
        "metric": metric,
        "latent_sizes": sizes,
        "schema_version": SCHEMA_VERSION,
        "folders": {str(s): size_dir(out, s).name for s in sizes},
        "records": records,
        "diverged": [{**d, "latent_size": s} for s, p in zip(sizes, payloads) for d in p.get("diverged", [])],
        "figures": [figure.name],
        # The widths' runs share one process and checkout: the first one's versions (the commit included).
        "versions": payloads[0].get("versions"),
    }
    reporting.atomic_write_text(out / TABLE, render_latent_sizes(combined))
    reporting.write_results_json(out / RESULTS, combined)
    return combined


def majority_share(folder: Path) -> float | None:
    """The share of the largest class among the labels the classifiers were judged on
    (a saved ``latents_untrained_seed<s>.npz``): the accuracy of always guessing it."""
    saved = sorted(Path(folder).glob("latents_untrained_seed*.npz"))
    if not saved:
        return None
    with np.load(saved[0]) as f:
        labels = np.asarray(f["labels"])
    return float(np.bincount(labels.astype(np.int64).ravel()).max() / labels.size) if labels.size else None


def plot_vs_latent_size(rows: Mapping, sizes: Sequence[int], classifiers: Sequence[str], metric: str, path,
                        *, title: str, majority: float | None = None) -> Path:
    """One panel per classifier: score against latent size (log scale), a line
    per mode and p with its 95% interval of the mean shaded; the untrained
    encoder dashed; ``majority`` (always guessing the largest class) dotted.
    The legend sits below the panels, clear of the data."""
    fig = reporting.new_figure((4.2 * len(classifiers), 4.6), layout=None)  # the legend below: laid out by hand
    axes = np.atleast_1d(fig.subplots(1, len(classifiers), sharey=True))
    for ax, name in zip(axes, classifiers):
        for key, by in rows.items():
            pts = [(s, by[s]["classifiers"][name][metric]) for s in sizes if s in by and name in by[s]["classifiers"]]
            if not pts:
                continue
            x = np.array([s for s, _ in pts], dtype=float)
            mean = np.array([v["mean"] for _, v in pts])
            style = dict(linestyle="--", color="gray") if key[0] == "untrained" else {}
            line = ax.plot(x, mean, marker="o", label=plain_row_label(next(iter(by.values()))), **style)[0]
            ax.fill_between(x, [v["low"] for _, v in pts], [v["high"] for _, v in pts], color=line.get_color(),
                            alpha=0.15, linewidth=0)
        if majority is not None:
            ax.axhline(majority, color="black", linestyle=":", linewidth=1,
                       label=f"majority class ({majority:.3f})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("latent size (log scale)")
        ax.set_title(reporting.CLASSIFIER_LABELS.get(name, name), fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(reporting.METRIC_LABELS.get(metric, metric))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize="small",
               title="line: mean over seeds and folds; band: its 95% interval (percentile bootstrap)",
               title_fontsize="small", frameon=False)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.27, top=0.86, wspace=0.08)
    fig.suptitle(title, fontsize="medium")
    return reporting.save_png(fig, path)
