"""What the terminal shows at the end of a grid or latent-size study: a plain-text comparison table."""

from __future__ import annotations

from icrst_jax.config import P_MODES
from icrst_jax.reporting.labels import SCALING_LABELS, SCALING_SHORT


def comparison_table(payload: dict) -> str:
    """A plain-text table of the primary metric per mode and classifier (for the terminal):
    each scaling's mean (the first with its 95% interval) and the MI, bias-corrected
    where the study computed its baselines (the plug-in MI favours noisy latents)."""
    metric = payload["metric"]
    recs = payload["records"]
    names = list(recs[0]["classifiers"]) if recs else []
    first = (payload.get("scalings") or ["none"])[0]
    others = list(recs[0].get("other_scalings") or {}) if recs else []
    short = SCALING_SHORT
    has_mi = any(r.get("mi") for r in recs)
    corrected = has_mi and all(r["mi"].get("corrected") for r in recs if r.get("mi"))
    head = f"{'method':<16}" + "".join(
        f"{n + ' ' + short.get(first, first):>20}" + "".join(f"{n + ' ' + short.get(sc, sc):>18}" for sc in others)
        for n in names)
    head += ("  MI corrected" if corrected else "  MI plug-in") if has_mi else ""
    lines = [f"{payload['dataset']} — {metric} on held-out latents (mean [95% interval]); "
             + ", ".join(f"{short.get(sc, sc)}: {SCALING_LABELS.get(sc, sc)}" for sc in [first, *others]),
             head]
    for r in recs:
        label = r["mode"] + (f" p={r['p']:g}" if r["mode"] in P_MODES else "")
        label += f" L={r['latent_size']}" if "latent_size" in r else ""  # a study over latent sizes
        cells = ""
        for n in names:
            m = r["classifiers"][n][metric]
            cells += f"{m['mean']:>8.3f} [{m['low']:.2f},{m['high']:.2f}]"
            cells += "".join(f"{r['other_scalings'][sc][n][metric]['mean']:>18.3f}" for sc in others)
        mi = ""
        if r.get("mi"):
            mi = f"  {(r['mi']['corrected'] if corrected else r['mi'])['mi']:>12.3f}"
        lines.append(f"{label:<16}{cells}{mi}" + ("  DIVERGED" if r.get("diverged") else ""))
    if payload.get("diverged"):
        lines.append(f"DIVERGED: {len(payload['diverged'])} grid point(s) diverged (see results.json 'diverged'); "
                     "their rows are not results")
    return "\n".join(lines)
