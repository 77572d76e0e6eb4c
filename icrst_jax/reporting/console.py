"""What the terminal shows at the end of a grid or latent-size study: a plain-text table that fits a screen.

One classifier (the headline: the paper's MLP when the study has it), each
feature scaling's ``mean [low, high]`` (the 95% interval of the mean), the
corrected MI where the study computed it, and the paper's value beside; the
full table of every classifier is in report.md.
"""

from __future__ import annotations

from icrst_jax.config import P_MODES
from icrst_jax.reporting.labels import CLASSIFIER_LABELS, SCALING_SHORT
from icrst_jax.reporting.paper import paper_values, primary_metric

# The paper's tables are MLP scores: the console's one classifier when the study has it.
HEADLINE_CLASSIFIER = "mlp"


def headline_classifier(names) -> str:
    """The classifier the console shows: the MLP (the paper's tables), else the first one."""
    names = list(names)
    return HEADLINE_CLASSIFIER if HEADLINE_CLASSIFIER in names else names[0]


def comparison_table(payload: dict) -> str:
    """A plain-text table, at most 100 columns, of the headline classifier's primary metric per mode:
    each scaling's mean [95% interval of the mean], the MI (bias-corrected where the study computed
    its baselines: the plug-in MI favours noisy latents) and the paper's MLP value (its ±)."""
    metric = payload["metric"]
    recs = payload["records"]
    if not recs:
        return f"{payload['dataset']}: no results"
    name = headline_classifier(recs[0]["classifiers"])
    scalings = [(payload.get("scalings") or ["none"])[0], *(recs[0].get("other_scalings") or {})]
    has_mi = any(r.get("mi") for r in recs)
    corrected = has_mi and all(r["mi"].get("corrected") for r in recs if r.get("mi"))
    show_paper = name == "mlp" and metric == primary_metric(payload["dataset"]) and any(
        paper_values(payload["dataset"], r["mode"], "mlp") for r in recs)
    head = f"{'method':<18}" + "".join(f"{SCALING_SHORT.get(sc, sc):>20}" for sc in scalings)
    head += ("  MI corrected" if corrected else "  MI plug-in") if has_mi else ""
    head += "  paper (its ±)" if show_paper else ""
    lines = [f"{payload['dataset']}: {CLASSIFIER_LABELS.get(name, name)} {metric} of held-out latents, "
             f"mean [95% CI of the mean] (all: report.md)", head]
    for r in recs:
        label = r["mode"] + (f" p={r['p']:g}" if r["mode"] in P_MODES else "")
        label += f" L={r['latent_size']}" if "latent_size" in r else ""  # a study over latent sizes
        cells = ""
        for sc in scalings:
            res = r["classifiers"] if sc == scalings[0] else r["other_scalings"][sc]
            m = res[name][metric]
            cells += f"{m['mean']:>8.3f} [{m['low']:.2f}, {m['high']:.2f}]"
        if has_mi:
            mi = (r["mi"]["corrected"] if corrected else r["mi"])["mi"] if r.get("mi") else None
            cells += f"  {mi:>12.3f}" if mi is not None else " " * 14
        if show_paper:
            cells += "  " + _paper_cell(payload["dataset"], r)
        lines.append((f"{label:<18}{cells}" + ("  DIVERGED" if r.get("diverged") else "")).rstrip())
    if payload.get("diverged"):
        lines.append(f"DIVERGED: {len(payload['diverged'])} grid point(s) diverged (see results.json 'diverged'); "
                     "their rows are not results")
    return "\n".join(lines)


def _paper_cell(dataset: str, rec: dict) -> str:
    """The paper's Tables 1/3 MLP value(s) of a row: its ICRST/TRST rows are p = 1."""
    if rec["mode"] in P_MODES and rec.get("p") not in (None, 1, 1.0):
        return ""
    return " / ".join(f"{m:.2f}±{pm:.2f}" for _, m, pm in paper_values(dataset, rec["mode"], "mlp"))
