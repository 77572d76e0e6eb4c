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

from icrst_jax import distributed, evaluation, reporting, run_identity, stages
from icrst_jax.config import StudyConfig
from icrst_jax.models import check_widths
from icrst_jax.reporting.console import comparison_table
from icrst_jax.reporting.markdown import format_score, markdown_table
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


def _row_key(rec: Mapping) -> tuple[str, float | None]:
    return rec["mode"], rec.get("p")


def side_by_side(payloads: Sequence[Mapping], latent_sizes: Sequence[int]) -> dict:
    """``{(mode, p): {latent size: record}}`` in the studies' row order."""
    rows: dict[tuple, dict[int, Mapping]] = {}
    for size, payload in zip(latent_sizes, payloads):
        for rec in payload["records"]:
            rows.setdefault(_row_key(rec), {})[int(size)] = rec
    return rows


def _label(by_size: Mapping) -> str:
    """The row label (mode, p) of one row of :func:`side_by_side`."""
    return plain_row_label(next(iter(by_size.values())))


def _difference_cell(rec: Mapping | None, standard: Mapping | None, classifier: str, metric: str) -> str:
    """Paired ``rec - standard`` over their seed x fold scores (the same seeds, in order)."""
    if rec is None or standard is None or rec.get("seeds") != standard.get("seeds"):
        return "—"
    a = rec["classifiers"][classifier][metric]["folds"]
    b = standard["classifiers"][classifier][metric]["folds"]
    if len(a) != len(b):
        return "—"
    mean, low, high = evaluation.percentile_interval(np.subtract(a, b))
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _loss_cell(rec: Mapping | None) -> str:
    losses = [x for x in (rec or {}).get("final_loss") or [] if x is not None]
    if not losses:
        return "—"
    if len(losses) == 1:
        return f"{losses[0]:.4f}"
    return f"{np.mean(losses):.4f} ± {np.std(losses, ddof=1):.4f}"


def combine(out, latent_sizes: Sequence[int]) -> dict:
    """Reads each width's ``results.json`` under ``out`` and writes the side-by-side report.

    Writes ``latent_sizes.md`` (per classifier: score mean [95% interval of
    the mean] per mode and p against latent size; then the final training
    loss (mean ± standard deviation over seeds; ICRST / TRST against their
    swapped targets), each mode's score minus Standard's paired over seeds and
    folds, the section 7 MI and the kNN purity), the figure
    ``<metric>_vs_latent_size.png`` (one panel per classifier, one line per
    mode and p, the interval shaded) and ``results.json``.

    Returns:
      ``{"dataset", "metric", "latent_sizes", "schema_version", "folders", "records",
      "diverged", "figures"}``: ``records`` are every width's records, each
      with its ``latent_size``, so :func:`icrst_jax.reporting.console.comparison_table`
      prints them.

    Raises:
      FileNotFoundError: a width has no ``results.json``.
    """
    out = Path(out)
    sizes = [int(s) for s in latent_sizes]
    payloads = _load(out, sizes)
    metric = payloads[0]["metric"]
    dataset = payloads[0]["dataset"]
    rows = side_by_side(payloads, sizes)
    classifiers = list(payloads[0]["records"][0]["classifiers"])
    head = ["method"] + [f"latent {s}" for s in sizes]
    lines = [f"# {dataset}: the bottleneck as a study axis", "",
             f"Each column is the same study with `train.model.latent_size` = L (folder `latent_size<L>/`, "
             f"its own report there). Held-out {reporting.METRIC_LABELS.get(metric, metric)}: mean [low, high], "
             f"the 95% interval of the mean (percentile bootstrap over seeds and folds).", ""]
    for name in classifiers:
        lines += [f"## {reporting.CLASSIFIER_LABELS.get(name, name)}", ""]
        lines += markdown_table(head, [
            [_label(by)] + [format_score(by[s]["classifiers"].get(name, {}).get(metric)) if s in by else "—"
                                for s in sizes]
            for key, by in rows.items()
        ])
        lines.append("")
    trained = {k: by for k, by in rows.items() if k[0] != "untrained"}
    if ("standard", 0.0) in rows:
        lines += ["## Difference to Standard, paired", "",
                  "Score minus Standard's at the same latent size, over the same seeds' cross-validation folds "
                  "(a seed's folds are the same for every mode): mean [95% percentile interval] of the "
                  "seed x fold differences.", ""]
        for name in classifiers:
            cells = [[f"{reporting.CLASSIFIER_LABELS.get(name, name)}: {_label(by)}"]
                     + [_difference_cell(by.get(s), rows[("standard", 0.0)].get(s), name, metric) for s in sizes]
                     for k, by in trained.items() if k != ("standard", 0.0)]
            lines += markdown_table(head, cells) + [""]
    lines += ["## Final training loss", "",
              "MSE against the training targets in the last epoch, mean ± standard deviation over seeds "
              "(ICRST and TRST: against their swapped targets, so compare a mode with itself across widths).", ""]
    lines += markdown_table(head, [[_label(by)] + [_loss_cell(by.get(s)) for s in sizes] for k, by in trained.items()])
    lines.append("")
    lines += _measure_tables(rows, sizes, head)
    figure = plot_vs_latent_size(rows, sizes, classifiers, metric, out / f"{metric}_vs_latent_size.png",
                                 title=f"{dataset}: held-out {reporting.METRIC_LABELS.get(metric, metric)} "
                                       f"against latent size",
                                 majority=majority_share(size_dir(out, sizes[0])) if metric == "accuracy" else None)
    lines += [f"![{metric} against latent size]({figure.name})", ""]
    reporting.atomic_write_text(out / TABLE, "\n".join(lines))
    records = [{**rec, "latent_size": s} for s, p in zip(sizes, payloads) for rec in p["records"]]
    combined = {
        "dataset": dataset,
        "metric": metric,
        "latent_sizes": sizes,
        "schema_version": SCHEMA_VERSION,
        "folders": {str(s): size_dir(out, s).name for s in sizes},
        "records": records,
        "diverged": [{**d, "latent_size": s} for s, p in zip(sizes, payloads) for d in p.get("diverged", [])],
        "figures": [figure.name],
    }
    reporting.write_results_json(out / RESULTS, combined)
    return combined


def _measure_tables(rows: Mapping, sizes: Sequence[int], head: list[str]) -> list[str]:
    """The MI and kNN purity tables (where the study computed them), one row per mode and p."""
    lines = []
    for title, field, value in (("Mutual information (section 7)", "mi", "mi"), ("kNN purity", "purity", "purity")):
        if any((r or {}).get(field) for by in rows.values() for r in by.values()):
            lines += [f"## {title}", ""]
            lines += markdown_table(head, [
                [_label(by)] + [f"{by[s][field][value]:.3f}" if s in by and by[s].get(field) else "—" for s in sizes]
                for k, by in rows.items()
            ])
            lines.append("")
    return lines


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
            line = ax.plot(x, mean, marker="o", label=_label(by), **style)[0]
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
