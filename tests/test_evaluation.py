"""Known-answer tests of the classifier protocol, the intervals and the MI of section 7."""

import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mutual_info_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from icrst_jax.evaluation import (
    PAPER_CLASSIFIERS as CLASSIFIERS,
    discretize,
    evaluate_classifiers,
    evaluate_many,
    knn_purity,
    latent_spread,
    make_classifier,
    mutual_information,
    pool_mi,
    percentile_interval,
    pool_over_seeds,
    pool_results,
    summarize,
)


def _clusters(n_per_class=100, n_classes=3, dim=6, sep=8.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * sep
    x = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(n_classes), n_per_class)
    return x, y


# --- classifiers -----------------------------------------------------------


def test_make_classifier_uses_defaults_and_seed():
    expected = {"svm": SVC(), "rf": RandomForestClassifier(), "mlp": MLPClassifier(), "nb": GaussianNB()}
    for name in CLASSIFIERS:
        clf = make_classifier(name, seed=7)
        assert type(clf) is type(expected[name])
        got, ref = clf.get_params(), expected[name].get_params()
        if "random_state" in ref:
            assert got.pop("random_state") == 7
            ref.pop("random_state")
        assert got == ref, name
    assert make_classifier("svm").kernel == "rbf"


def test_unknown_classifier_lists_known_names():
    with pytest.raises(ValueError, match="svm, rf, mlp, nb, knn, linear"):
        make_classifier("logreg")
    x, y = _clusters(20, 2)
    with pytest.raises(ValueError, match="unknown classifier 'xgb'"):
        evaluate_classifiers(x, y, ["nb", "xgb"], n_folds=3)


def test_separable_clusters_give_near_perfect_scores():
    x, y = _clusters(n_per_class=80, n_classes=3)
    lines = []
    res = evaluate_classifiers(x, y, n_folds=4, seed=0, progress=lines.append)
    assert list(res) == list(CLASSIFIERS)
    for name, r in res.items():
        assert r["n_folds"] == 4
        assert r["accuracy"]["folds"].shape == (4,)
        assert r["accuracy"]["mean"] >= 0.97, name
        assert r["f1_macro"]["mean"] >= 0.97, name
        assert r["accuracy"]["low"] <= r["accuracy"]["mean"] <= r["accuracy"]["high"] <= 1.0
        assert r["fit_time"].shape == (4,)
    # One line per fold and one summary per classifier.
    assert len(lines) == 4 * len(CLASSIFIERS) + len(CLASSIFIERS)
    assert lines[0].startswith("[svm] fold 1/4")


def test_random_labels_give_chance_accuracy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = rng.permutation(np.repeat([0, 1], 200))
    res = evaluate_classifiers(x, y, n_folds=5, seed=0)
    for name, r in res.items():
        assert abs(r["accuracy"]["mean"] - 0.5) < 0.15, (name, r["accuracy"]["mean"])


def test_macro_f1_differs_from_accuracy_on_imbalanced_data():
    # A classifier that ignores the minority class has accuracy 0.9 but macro F1 < 0.5.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    y = np.r_[np.zeros(180, int), np.ones(20, int)]
    r = evaluate_classifiers(x, y, ["svm"], n_folds=5)["svm"]
    assert r["accuracy"]["mean"] == pytest.approx(0.9, abs=0.02)
    assert r["f1_macro"]["mean"] < 0.55


def test_same_seed_same_folds_and_parallel_matches_serial():
    x, y = _clusters(n_per_class=40, n_classes=2, sep=0.8, seed=3)
    a = evaluate_classifiers(x, y, ["rf", "nb"], n_folds=5, seed=4)
    b = evaluate_classifiers(x, y, ["rf", "nb"], n_folds=5, seed=4, n_jobs=2)
    for name in ("rf", "nb"):
        np.testing.assert_array_equal(a[name]["accuracy"]["folds"], b[name]["accuracy"]["folds"])
    c = evaluate_classifiers(x, y, ["nb"], n_folds=5, seed=5)
    assert not np.array_equal(a["nb"]["accuracy"]["folds"], c["nb"]["accuracy"]["folds"])


def test_n_folds_reduced_to_smallest_class_with_warning():
    x, y = _clusters(n_per_class=30, n_classes=2)
    x, y = x[:34], y[:34]  # 30 of class 0, 4 of class 1
    lines = []
    with pytest.warns(RuntimeWarning, match="using 4 folds"):
        res = evaluate_classifiers(x, y, ["nb"], n_folds=10, progress=lines.append)
    assert res["nb"]["n_folds"] == 4
    assert res["nb"]["accuracy"]["folds"].shape == (4,)
    assert lines[0].startswith("warning: n_folds=10")


def test_fold_errors_are_clear():
    x, y = _clusters(n_per_class=10, n_classes=2)
    with pytest.raises(ValueError, match="single member"):
        evaluate_classifiers(x[:11], y[:11], ["nb"], n_folds=3)
    with pytest.raises(ValueError, match="n_folds must be >= 2"):
        evaluate_classifiers(x, y, ["nb"], n_folds=1)
    with pytest.raises(ValueError, match="at least 2 classes"):
        evaluate_classifiers(x[:10], y[:10], ["nb"], n_folds=3)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_classifiers(bad, y, ["nb"], n_folds=3)
    with pytest.raises(ValueError, match="labels must be"):
        evaluate_classifiers(x, y[:-1], ["nb"], n_folds=3)


def test_mlp_convergence_warnings_are_silenced_and_counted():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(150, 8))
    y = rng.integers(0, 3, size=150)  # unlearnable: the default MLP hits max_iter=200
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = evaluate_classifiers(x, y, ["mlp"], n_folds=3)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert res["mlp"]["convergence_warnings"] >= 1


# --- intervals -------------------------------------------------------------


def test_percentile_interval_matches_numpy():
    rng = np.random.default_rng(5)
    for n in (1, 2, 10, 37):
        v = rng.random(n)
        mean, low, high = percentile_interval(v)
        assert mean == pytest.approx(v.mean())
        assert low == pytest.approx(np.percentile(v, 2.5))
        assert high == pytest.approx(np.percentile(v, 97.5))
    mean, low, high = percentile_interval(np.arange(11.0), level=0.8)
    assert (mean, low, high) == pytest.approx((5.0, 1.0, 9.0))
    # 10 folds: 2.5th percentile = 0.225 of the way from the smallest to the 2nd smallest.
    v = np.array([0.80, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 1.00])
    _, low, high = percentile_interval(v)
    assert low == pytest.approx(0.80 + 0.225 * 0.10)
    assert high == pytest.approx(0.97 + 0.775 * 0.03)
    with pytest.raises(ValueError):
        percentile_interval([])
    with pytest.raises(ValueError):
        percentile_interval([1.0], level=1.0)


def test_bootstrap_interval_is_that_of_the_mean_and_resamples_seeds():
    """The interval shown with a mean is the mean's: about 1.96 standard errors each side for
    10 folds, far inside the single folds' spread; reproducible; and across seeds it resamples
    the seeds first, so seeds that disagree widen it beyond folds pooled as one sample."""
    from icrst_jax.evaluation.intervals import bootstrap_mean_interval

    folds = np.array([0.82, 0.91, 0.95, 0.88, 1.0, 0.86, 0.93, 0.97, 0.9, 0.84])
    low, high = bootstrap_mean_interval([folds])
    se = folds.std(ddof=0) / np.sqrt(folds.size)  # the bootstrap's own standard error
    assert (high - low) / 2 == pytest.approx(1.96 * se, rel=0.15)
    assert low < folds.mean() < high
    assert (low, high) == bootstrap_mean_interval([folds])  # seeded
    _, fold_low, fold_high = percentile_interval(folds)
    assert high - low < (fold_high - fold_low) / 2
    apart = [folds - 0.1, folds + 0.1]
    as_one = bootstrap_mean_interval([np.concatenate(apart)])
    by_seed = bootstrap_mean_interval(apart)
    assert by_seed[1] - by_seed[0] > 2 * (as_one[1] - as_one[0])
    assert bootstrap_mean_interval([[0.7]]) == (0.7, 0.7)
    with pytest.raises(ValueError):
        bootstrap_mean_interval([[]])


def test_summarize_and_pooling():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["n"] == 4 and s["mean"] == 2.5
    assert s["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert summarize([0.7])["std"] == 0.0
    seeds = [np.array([0.8, 0.9, 0.85]), np.array([0.7, 0.95])]
    pooled = pool_over_seeds(seeds)
    allv = np.concatenate(seeds)
    assert pooled["n"] == 5 and pooled["n_seeds"] == 2
    assert pooled["fold_low"] == pytest.approx(np.percentile(allv, 2.5))
    assert pooled["fold_high"] == pytest.approx(np.percentile(allv, 97.5))
    assert pooled["fold_low"] < pooled["low"] < pooled["mean"] < pooled["high"] <= pooled["fold_high"]
    np.testing.assert_array_equal(pooled["folds"], allv)

    def result(folds, conv):
        f = np.asarray(folds)
        return {"nb": {"accuracy": {"folds": f}, "f1_macro": {"folds": f / 2}, "n_folds": len(f),
                       "convergence_warnings": conv}}

    pr = pool_results([result([1.0, 0.5], 1), result([0.75, 0.25], 2)])
    assert pr["nb"]["accuracy"]["mean"] == pytest.approx(0.625)
    assert pr["nb"]["f1_macro"]["n"] == 4
    assert pr["nb"]["convergence_warnings"] == 3
    assert pr["nb"]["n_folds"] == [2, 2]


# --- mutual information ----------------------------------------------------


def _entropy_nats(codes):
    _, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_discretize_bin_edges():
    v = np.array([-0.0005, 0.0, 0.1249, 0.125, 0.5, 0.99, 1.0, 1.0004])
    np.testing.assert_array_equal(discretize(v, bins=8), [0, 0, 0, 1, 4, 7, 7, 7])


def test_mi_of_identical_images_is_their_entropy():
    # 10 groups of k + 1 = 6 identical images with identical latents, groups far
    # apart in latent space: every neighbour of a sample is an exact copy.
    rng = np.random.default_rng(6)
    k, groups, bins = 5, 10, 16
    base = rng.random((groups, 12, 12, 3)) ** 2  # non-uniform pixel histogram
    images = np.repeat(base, k + 1, axis=0)
    features = np.repeat(np.arange(groups)[:, None] * 100.0 * np.ones((1, 4)), k + 1, axis=0)
    res = mutual_information(features, images, n_samples=15, k=k, bins=bins, seed=0)

    codes = np.minimum(np.floor(images * bins), bins - 1)
    expected = [np.mean([_entropy_nats(codes[i, ..., c]) for c in range(3)]) for i in res["indices"]]
    np.testing.assert_allclose(res["per_sample"], expected, rtol=1e-12)
    assert res["mi"] == pytest.approx(np.mean(expected))
    assert res["unit"] == "nats" and res["n_samples"] == 15 and res["k"] == k and res["bins"] == bins


def test_mi_of_independent_noise_is_only_the_plugin_bias():
    rng = np.random.default_rng(7)
    images = rng.random((300, 32, 32, 2))
    features = rng.normal(size=(300, 8))
    bins, pixels = 8, 32 * 32
    res = mutual_information(features, images, n_samples=30, k=10, bins=bins)
    # Plug-in MI of independent uniform variables is >= 0 with expectation
    # ~ (bins - 1)^2 / (2 * pixels) (Miller-Madow) = 0.024 nats here.
    bias = (bins - 1) ** 2 / (2 * pixels)
    assert 0.85 * bias < res["mi"] < 1.15 * bias
    assert (res["per_sample"] >= 0).all()
    assert res["low"] <= res["mi"] <= res["high"]


def test_mi_is_higher_when_latent_neighbours_are_near_copies():
    rng = np.random.default_rng(8)
    groups, per_group = 12, 15
    base = rng.random((groups, 16, 16, 1))
    images = np.clip(np.repeat(base, per_group, axis=0) + 0.05 * rng.normal(size=(groups * per_group, 16, 16, 1)), 0, 1)
    centres = rng.normal(size=(groups, 6)) * 10
    informative = np.repeat(centres, per_group, axis=0) + 0.1 * rng.normal(size=(groups * per_group, 6))
    random_latent = rng.normal(size=(groups * per_group, 6))
    good = mutual_information(informative, images, n_samples=40, k=10, bins=8)
    bad = mutual_information(random_latent, images, n_samples=40, k=10, bins=8)
    assert good["mi"] > bad["mi"] + 0.5
    assert good["low"] > bad["high"]


def test_mi_matches_sklearn_on_bin_indices_and_brute_force_knn():
    rng = np.random.default_rng(9)
    n, bins = 40, 6
    images = rng.random((n, 10, 10, 2)) ** 3
    features = rng.normal(size=(n, 3))
    res = mutual_information(features, images, n_samples=n, k=3, bins=bins)
    np.testing.assert_array_equal(res["indices"], np.arange(n))
    codes = discretize(images, bins).reshape(n, -1, 2)
    d = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    for i in range(n):
        nbrs = np.argsort(d[i], kind="stable")[:3]
        want = np.mean([mutual_info_score(codes[i, :, c], codes[j, :, c]) for j in nbrs for c in range(2)])
        assert res["per_sample"][i] == pytest.approx(want, abs=1e-12)


def test_mi_image_layouts_agree_and_seed_is_reproducible():
    rng = np.random.default_rng(10)
    images = rng.random((50, 6, 6, 1))
    features = rng.normal(size=(50, 4))
    r4 = mutual_information(features, images, n_samples=10, k=4, bins=4, seed=3)
    r3 = mutual_information(features, images[..., 0], n_samples=10, k=4, bins=4, seed=3)
    r2 = mutual_information(features, images.reshape(50, -1), n_samples=10, k=4, bins=4, seed=3)
    np.testing.assert_array_equal(r4["per_sample"], r3["per_sample"])
    np.testing.assert_array_equal(r4["per_sample"], r2["per_sample"])
    np.testing.assert_array_equal(r4["indices"], r2["indices"])
    other = mutual_information(features, images, n_samples=10, k=4, bins=4, seed=4)
    assert not np.array_equal(r4["indices"], other["indices"])
    # n_samples above N uses every observation once.
    assert mutual_information(features, images, n_samples=500, k=4, bins=4)["n_samples"] == 50


def test_mi_rejects_wrong_pixel_scale_and_bad_k():
    rng = np.random.default_rng(11)
    features = rng.normal(size=(30, 3))
    images = rng.random((30, 5, 5, 1))
    with pytest.raises(ValueError, match="dtype uint8"):
        mutual_information(features, (images * 255).astype(np.uint8), n_samples=5, k=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mutual_information(features, (images - 0.5) / 0.25, n_samples=5, k=3)
    with pytest.raises(ValueError, match="k must be"):
        mutual_information(features, images, n_samples=5, k=30)
    with pytest.raises(ValueError, match="differ in length"):
        mutual_information(features[:-1], images, n_samples=5, k=3)


# --- feature scaling --------------------------------------------------------


def _outlier_data():
    """Feature 0 separates the classes, feature 1 is noise; one row has feature 0 = 1e4.

    A scaler fitted on all rows divides feature 0 by a std inflated by the
    outlier, so the class signal shrinks below the noise in every fold; a scaler
    fitted on a training fold keeps it in the fold whose test part holds the outlier.
    """
    rng = np.random.default_rng(12)
    n = 60
    y = np.repeat([0, 1], n // 2)
    x = np.c_[y + 0.1 * rng.normal(size=n), 3.0 * rng.normal(size=n)]
    x[0, 0] = 1e4
    return x, y


def _svm_fold_scores(x, y, n_folds, seed, fit_scaler):
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scores = []
    for train, test in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(x, y):
        scaler = StandardScaler().fit(fit_scaler(train))
        clf = SVC(kernel="rbf", random_state=seed).fit(scaler.transform(x[train]), y[train])
        scores.append(float(np.mean(clf.predict(scaler.transform(x[test])) == y[test])))
    return np.array(scores)


def test_standard_scaling_is_fitted_inside_each_training_fold():
    x, y = _outlier_data()
    res = evaluate_classifiers(x, y, ["svm"], n_folds=5, seed=0, scaling="standardised")["svm"]
    in_fold = _svm_fold_scores(x, y, 5, 0, lambda train: x[train])
    on_all = _svm_fold_scores(x, y, 5, 0, lambda train: x)
    np.testing.assert_array_equal(res["accuracy"]["folds"], in_fold)
    # The leak is visible on these data: in the outlier's fold a scaler fitted on
    # all rows loses the class signal, so the equality above would fail.
    assert np.max(in_fold - on_all) > 0.3
    assert res["scaling"] == "standardised"
    raw = evaluate_classifiers(x, y, ["svm"], n_folds=5, seed=0)["svm"]
    assert raw["scaling"] == "none"


def test_standard_scaling_undoes_a_per_feature_rescale_and_none_does_not():
    x, y = _clusters(n_per_class=40, n_classes=3, dim=4, sep=1.5, seed=13)
    scale = np.array([1e-3, 1.0, 1e3, 10.0])
    jobs = [(x, y, 0, "standardised"), (x * scale, y, 0, "standardised"), (x, y, 0, "none"), (x * scale, y, 0, "none")]
    a, b, c, d = evaluate_many(jobs, ["svm"], n_folds=4)
    np.testing.assert_allclose(a["svm"]["accuracy"]["folds"], b["svm"]["accuracy"]["folds"])
    assert not np.allclose(c["svm"]["accuracy"]["folds"], d["svm"]["accuracy"]["folds"])
    assert isinstance(make_classifier("mlp", 3, "standardised").steps[-1][1], MLPClassifier)
    with pytest.raises(ValueError, match="unknown scaling 'minmax'"):
        make_classifier("svm", scaling="minmax")
    # The scaling's earlier name is the same scaling.
    (old,) = evaluate_many([(x * scale, y, 0, "standard")], ["svm"], n_folds=4)
    np.testing.assert_array_equal(old["svm"]["accuracy"]["folds"], b["svm"]["accuracy"]["folds"])
    assert old["svm"]["scaling"] == "standardised"


def test_pooling_refuses_mixed_scalings():
    x, y = _clusters(n_per_class=10, n_classes=2, dim=2)
    a = evaluate_classifiers(x, y, ["nb"], n_folds=2)
    b = evaluate_classifiers(x, y, ["nb"], n_folds=2, scaling="standardised")
    assert pool_results([b, b])["nb"]["scaling"] == "standardised"
    with pytest.raises(ValueError, match="different feature scalings"):
        pool_results([a, b])


# --- kNN purity and latent spread ------------------------------------------


def test_purity_is_one_for_perfect_clusters_and_chance_for_random_latents():
    x, y = _clusters(n_per_class=50, n_classes=4, dim=5, sep=50.0, seed=14)
    res = knn_purity(x, y, k=10)
    assert res["purity"] == 1.0
    assert res["chance"] == pytest.approx(4 * 50 * 49 / (200 * 199))
    rng = np.random.default_rng(15)
    y10 = np.repeat(np.arange(10), 100)
    random = knn_purity(rng.normal(size=(1000, 8)), y10, k=20)
    assert abs(random["purity"] - 0.1) < 0.02 and random["chance"] == pytest.approx(0.1, abs=0.001)
    # Blocked search gives the brute-force answer, self excluded by index.
    z = rng.normal(size=(700, 3))
    lab = rng.integers(0, 3, size=700)
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nb = np.argsort(d, axis=1, kind="stable")[:, :7]
    assert knn_purity(z, lab, k=7)["purity"] == pytest.approx(np.mean(lab[nb] == lab[:, None]))
    # Scale-free, unlike the spread.
    assert knn_purity(z * 1e-3, lab, k=7)["purity"] == knn_purity(z, lab, k=7)["purity"]
    assert latent_spread(z * 1e-3) == pytest.approx(1e-3 * latent_spread(z))
    with pytest.raises(ValueError, match="k must be"):
        knn_purity(z, lab, k=700)


# --- MI baselines -----------------------------------------------------------


def test_corrected_mi_is_plugin_minus_permutation_and_near_zero_for_independent_images():
    rng = np.random.default_rng(16)
    images = rng.random((300, 16, 16, 2)) ** 2
    features = rng.normal(size=(300, 6))
    res = mutual_information(features, images, n_samples=40, k=8, bins=16)
    np.testing.assert_allclose(res["corrected"]["per_sample"], res["per_sample"] - res["permuted"]["per_sample"])
    assert res["corrected"]["mi"] == pytest.approx(res["mi"] - res["permuted"]["mi"])
    # The plug-in value is nearly all bias here; the corrected one is ~0.
    assert res["mi"] > 0.2
    assert abs(res["corrected"]["mi"]) < 0.02 * res["mi"] + 0.005
    # Latent neighbours are no better than random ones when the latents are noise.
    assert res["random_neighbours"]["mi"] == pytest.approx(res["mi"], rel=0.05)
    # The main estimate does not depend on computing the baselines.
    plain = mutual_information(features, images, n_samples=40, k=8, bins=16, baselines=False)
    np.testing.assert_array_equal(plain["per_sample"], res["per_sample"])
    assert "corrected" not in plain


def test_corrected_mi_stays_large_for_near_copies_and_pools_over_seeds():
    rng = np.random.default_rng(17)
    groups, per_group = 12, 15
    base = rng.random((groups, 16, 16, 1))
    images = np.clip(np.repeat(base, per_group, axis=0) + 0.05 * rng.normal(size=(groups * per_group, 16, 16, 1)), 0, 1)
    latents = np.repeat(rng.normal(size=(groups, 6)) * 10, per_group, axis=0)
    res = mutual_information(latents, images, n_samples=30, k=10, bins=8)
    assert res["corrected"]["mi"] > 0.5
    assert res["mi"] > res["random_neighbours"]["mi"] + 0.5
    other = mutual_information(latents, images, n_samples=30, k=10, bins=8, seed=1)
    pooled = pool_mi([res, other])
    assert pooled["n_seeds"] == 2 and len(pooled["corrected"]["per_sample"]) == 60
    assert pooled["corrected"]["mi"] == pytest.approx((res["corrected"]["mi"] + other["corrected"]["mi"]) / 2)


def test_mi_interval_is_of_the_mean_and_pooled_seeds_are_resampled_as_seeds():
    """low/high: the bootstrap interval of the mean MI (the pooled seeds as groups), which
    tells modes apart; sample_low/sample_high: the spread of single samples, which cannot."""
    from icrst_jax.evaluation.intervals import bootstrap_mean_interval, percentile_interval

    rng = np.random.default_rng(21)
    images = rng.random((200, 8, 8, 1))
    latents = rng.normal(size=(200, 4))
    a, b = (mutual_information(latents, images, n_samples=50, k=5, bins=4, seed=s) for s in (0, 1))
    assert (a["low"], a["high"]) == bootstrap_mean_interval([a["per_sample"]])
    assert (a["sample_low"], a["sample_high"]) == percentile_interval(a["per_sample"])[1:]
    assert a["sample_low"] < a["low"] < a["mi"] < a["high"] < a["sample_high"]
    pooled = pool_mi([a, b])
    groups = [a["corrected"]["per_sample"], b["corrected"]["per_sample"]]
    assert (pooled["corrected"]["low"], pooled["corrected"]["high"]) == bootstrap_mean_interval(groups)
    assert (pooled["corrected"]["low"], pooled["corrected"]["high"]) != bootstrap_mean_interval(
        [np.concatenate(groups)])  # seeds, not one bag of samples


def test_mi_of_an_older_results_json_is_upgraded_to_the_interval_it_names():
    from icrst_jax.evaluation.information import upgrade_mi
    from icrst_jax.evaluation.intervals import bootstrap_mean_interval
    from icrst_jax.reporting.quoted import upgraded

    rng = np.random.default_rng(22)
    per_sample = rng.random(40)
    old = {"mi": float(per_sample.mean()), "low": 0.02, "high": 0.97, "per_sample": per_sample.tolist(),
           "n_seeds": 2, "corrected": {"mi": 0.3, "low": 0.1, "high": 0.5, "per_sample": per_sample.tolist()}}
    new = upgrade_mi(old)
    assert (new["sample_low"], new["sample_high"]) == (0.02, 0.97)
    assert (new["low"], new["high"]) == bootstrap_mean_interval([per_sample[:20], per_sample[20:]])
    assert new["corrected"]["sample_low"] == 0.1 and new["corrected"]["low"] > 0.1
    assert upgrade_mi(new) == new
    along = {"records": [{"mi": old, "trajectory": [{"epoch": 1, "mi": {"mi": 0.4, "low": 0.1, "high": 0.9}}]}],
             "schema_version": 3}
    entry = upgraded(along)["records"][0]["trajectory"][0]["mi"]
    assert entry["low"] is None and entry["high"] is None and entry["sample_high"] == 0.9
    assert upgraded(dict(along, schema_version=4)) == dict(along, schema_version=4)


def test_progress_lines_name_their_set_and_say_max_iter_once():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    lines = []
    evaluate_many([(x[:120, :4], y[:120], 0, "none"), (x[:120, :4], y[:120], 0, "standardised")], ["mlp"],
                             n_folds=3, backend="sklearn", fold_lines=False, progress=lines.append,
                             job_names=["icrst p=0.5 seed 0, raw", "icrst p=0.5 seed 0, standardised"])
    assert lines[0].startswith("[icrst p=0.5 seed 0, raw][mlp] accuracy")
    assert lines[1].startswith("[icrst p=0.5 seed 0, standardised][mlp] accuracy")
    summary = [line for line in lines if "max_iter" in line]
    # Raw breast cancer features: scikit-learn's MLP does not converge in 200 epochs.
    assert len(summary) == 1 and summary[0].startswith("[mlp] ") and "/6 fits stopped" in summary[0]
    with pytest.raises(ValueError, match="job_names has 1 names for 2 jobs"):
        evaluate_many([(x, y, 0), (x, y, 1)], ["nb"], n_folds=3, job_names=["a"])


@pytest.mark.parametrize("backend", ["sklearn", "auto"])
def test_evaluate_many_counts_its_classifier_seconds(backend):
    from sklearn.datasets import load_breast_cancer

    from icrst_jax.evaluation import EvalSeconds

    x, y = load_breast_cancer(return_X_y=True)
    seconds = EvalSeconds()
    evaluate_many([(x[:120, :4], y[:120], 0)], ["svm", "nb"], n_folds=3, backend=backend, seconds=seconds)
    if backend == "sklearn":
        assert seconds.sklearn_classifiers_s > 0 and seconds.jax_classifiers_s == 0
    else:
        assert seconds.sklearn_classifiers_s > 0 and seconds.jax_classifiers_s > 0


def test_fold_scores_equal_sklearns_accuracy_and_macro_f1():
    """The counts-based scores equal scikit-learn's, also with classes missing from
    the truth or the predictions (its label set is their union) and string labels."""
    from sklearn.metrics import accuracy_score, f1_score

    from icrst_jax.evaluation import fold_scores

    rng = np.random.default_rng(3)
    cases = [(rng.integers(0, k, n), rng.integers(0, k2, n)) for k, k2, n in
             [(2, 2, 12), (10, 10, 57), (10, 7, 40), (3, 5, 9), (101, 101, 300), (1, 1, 5), (1, 2, 6)]]
    cases.append((np.array(list("aabbc")), np.array(list("abbcc"))))
    for y, p in cases:
        got = fold_scores(y, p)
        assert got["accuracy"] == accuracy_score(y, p)
        assert abs(got["f1_macro"] - f1_score(y, p, average="macro", zero_division=0)) < 1e-15, (y, p)
    assert fold_scores([0, 1, 1], [1, 1, 1])["f1_macro"] == 0.4  # class 0: F1 0; class 1: 2*2/(4+1) = 0.8


@pytest.mark.parametrize("backend", ["sklearn", "auto"])
def test_job_classifiers_give_each_job_its_subset_with_the_numbers_of_separate_calls(backend):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    a, b = (x[:150, :4], y[:150], 0, "standardised"), (x[150:300, 4:8], y[150:300], 1, "none")
    both = evaluate_many([a, b], ["svm", "nb"], n_folds=3, backend=backend, job_classifiers=[["nb", "svm"], ["nb"]])
    assert list(both[0]) == ["svm", "nb"] and list(both[1]) == ["nb"]
    alone_a = evaluate_many([a], ["svm", "nb"], n_folds=3, backend=backend)[0]
    alone_b = evaluate_many([b], ["nb"], n_folds=3, backend=backend)[0]
    for got, ref in [(both[0], alone_a), (both[1], alone_b)]:
        for name in ref:
            np.testing.assert_array_equal(got[name]["accuracy"]["folds"], ref[name]["accuracy"]["folds"])
    with pytest.raises(ValueError, match=r"job_classifiers names \['mlp'\], which are not among"):
        evaluate_many([a], ["nb"], n_folds=3, job_classifiers=[["mlp"]])
    with pytest.raises(ValueError, match="job_classifiers has 1 entries for 2 jobs"):
        evaluate_many([a, b], ["nb"], n_folds=3, job_classifiers=[["nb"]])


def test_intelex_svc_predicts_what_sklearns_svc_predicts(monkeypatch):
    """scikit-learn-intelex's SVC (the auto backend's SVM on large folds) against scikit-learn's
    on real data: predictions equal on at least 99% of each fold's test points; and the auto
    backend, with the size threshold at 0, routes every SVM fit through it with the fold scores
    of the sklearn backend."""
    pytest.importorskip("sklearnex")
    import sklearnex.svm
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from icrst_jax.evaluation import auto_backend

    bx, by = load_breast_cancer(return_X_y=True)
    dx, dy = load_digits(return_X_y=True)
    sets = [(bx, by), (StandardScaler().fit_transform(bx), by), (dx[:900], dy[:900])]
    for x, y in sets:
        for train, test in StratifiedKFold(10, shuffle=True, random_state=0).split(x, y):
            ours = sklearnex.svm.SVC().fit(x[train], y[train]).predict(x[test])
            ref = SVC().fit(x[train], y[train]).predict(x[test])
            assert np.mean(ours == ref) >= 0.99
    fits = []
    real = sklearnex.svm.SVC.fit
    monkeypatch.setattr(sklearnex.svm.SVC, "fit", lambda self, *a, **kw: fits.append(1) or real(self, *a, **kw))
    monkeypatch.setattr(auto_backend, "INTELEX_SVC_MIN_CELLS", 0)
    jobs = [(bx, by, 0, "standardised"), (dx[:900], dy[:900], 1, "none")]
    auto = evaluate_many(jobs, ["svm"], n_folds=5, backend="auto", n_jobs=1)
    assert len(fits) == 10
    ref = evaluate_many(jobs, ["svm"], n_folds=5, backend="sklearn", n_jobs=1)
    for a, r, (x, *_) in zip(auto, ref, jobs):
        # At most one test point of difference per fold.
        assert np.max(np.abs(a["svm"]["accuracy"]["folds"] - r["svm"]["accuracy"]["folds"])) <= 1 / (len(x) // 5)
    monkeypatch.setattr(auto_backend, "INTELEX_SVC_MIN_CELLS", 10**9)
    evaluate_many(jobs[:1], ["svm"], n_folds=5, backend="auto", n_jobs=1)
    assert len(fits) == 10  # small folds stay with scikit-learn's SVC


def test_knn_search_host_and_device_give_the_brute_force_neighbours_with_ties():
    """Both kNN paths equal a full sort by (distance, index), on integer features full of
    tied distances and exact duplicates (a duplicate of the query counts; the query does not)."""
    from icrst_jax.evaluation.neighbours import knn_excluding_self

    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(300, 3)).astype(np.float32)
    queries = np.sort(rng.choice(300, size=70, replace=False))
    d2 = np.square(x[queries, None, :].astype(np.float64) - x[None]).sum(-1)
    d2[np.arange(70), queries] = np.inf
    ref = np.stack([np.lexsort((np.arange(300), row))[:7] for row in d2])
    for on_device in (False, True):
        np.testing.assert_array_equal(knn_excluding_self(x, queries, 7, on_device=on_device), ref)


def test_equal_jobs_are_fitted_once_and_share_their_scores(monkeypatch):
    """Standard, ICRST p=0 and TRST p=0 latents of one seed are the same numbers: a job equal
    to an earlier one (content, not object) costs no fit and reports the earlier scores."""
    from icrst_jax import evaluation
    from icrst_jax.evaluation import sklearn_backend

    x, y = _clusters(n_per_class=30)
    calls = []
    real = sklearn_backend.fit_fold
    monkeypatch.setattr(sklearn_backend, "fit_fold", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    jobs = [(x, y, 0), (x + 1.0, y, 0), (x.copy(), y.copy(), 0), (x, y, 1)]
    lines = []
    res = evaluation.evaluate_many(jobs, ["nb"], n_folds=3, n_jobs=1, progress=lines.append, fold_lines=False,
                                   job_names=["a", "b", "c", "d"])
    assert len(calls) == 3 * 3  # jobs a, b and d
    assert res[2]["nb"]["same_as"] == "a" and "same_as" not in res[0]["nb"]
    np.testing.assert_array_equal(res[2]["nb"]["accuracy"]["folds"], res[0]["nb"]["accuracy"]["folds"])
    assert any("1 feature set(s) equal to an earlier one (e.g. [c] = [a])" in line for line in lines)
    res[2]["nb"]["accuracy"]["folds"][0] = -1.0  # a copy, not the earlier job's arrays
    assert res[0]["nb"]["accuracy"]["folds"][0] != -1.0
