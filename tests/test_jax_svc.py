"""The JAX SVC against scikit-learn's ``SVC()`` on real data.

* Predictions equal to ``SVC().fit(...).predict(...)`` on at least 99% of the test
  points of every fold (10-fold ``StratifiedKFold``): Breast Cancer raw and
  standardised in the fold, digits pixels (10 classes), a 3-class digits subset.
* Where they agree, the pair decision values, the intercepts and each pair's dual
  objective are close to scikit-learn's (both stop at libsvm's tolerance); gamma
  ("scale") is scikit-learn's.
* The solver follows libsvm's steps: against ``SVC(shrinking=False)`` (the same
  algorithm, no shrinking) most (fold, pair) problems take the same number of
  SMO iterations and end at the same intercept to 1e-6 (the kernel's products are
  float32 here, float64 in libsvm: entries a few float32 ulps apart).
* The vote: applied to scikit-learn's own decision values it gives its
  predictions on every digit (three of them are tied votes).

scikit-learn runs with one BLAS thread (a shared 2-core machine).
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from icrst_jax.evaluation import jax_svc as js

N_FOLDS = 10


def _folds(y):
    splits = list(StratifiedKFold(N_FOLDS, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    mask = np.zeros((N_FOLDS, len(y)), bool)
    for f, (tr, _) in enumerate(splits):
        mask[f, tr] = True
    return splits, mask


def _sklearn_folds(x, y, splits, scaled, **svc_kwargs):
    """Per fold: (fitted SVC(decision_function_shape="ovo"), its training rows as it saw them, test rows)."""
    out = []
    with threadpool_limits(1):
        for tr, te in splits:
            xt, xe = x[tr], x[te]
            if scaled:
                scaler = StandardScaler().fit(xt)
                xt, xe = scaler.transform(xt), scaler.transform(xe)
            out.append((SVC(decision_function_shape="ovo", **svc_kwargs).fit(xt, y[tr]), xt, xe))
    return out


def _ovo(clf, xe):
    """libsvm's pair decision values ``(n, P)`` (scikit-learn negates them for two classes)."""
    d = clf.decision_function(xe)
    return -d[:, None] if d.ndim == 1 else d


def _digits_358():
    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, [3, 5, 8])
    return x[keep], np.unique(y[keep], return_inverse=True)[1]


class Case:
    """One data set's JAX fits (all its scalings in one program call) and scikit-learn's."""

    def __init__(self, x, y, scalings):
        self.x, self.y = x, y
        self.k = len(np.unique(y))
        self.splits, mask = _folds(y)
        self.scalings = scalings
        res = js.svc(x[None], y[None], np.zeros(N_FOLDS * len(scalings), np.int32), np.tile(mask, (len(scalings), 1)),
                     n_classes=self.k, scaled=np.repeat(scalings, N_FOLDS))
        self.jax = {sc: type(res)(*(a[i * N_FOLDS:(i + 1) * N_FOLDS] for a in res)) for i, sc in enumerate(scalings)}
        self.sk = {sc: _sklearn_folds(x, y, self.splits, sc) for sc in scalings}


@pytest.fixture(scope="module")
def cases():
    x, y = load_breast_cancer(return_X_y=True)
    xd, yd = load_digits(return_X_y=True)
    return {"breast_cancer": Case(x, y, [False, True]), "digits": Case(xd, yd, [False]),
            "digits_358": Case(*_digits_358(), [False, True])}


CASES = [("breast_cancer", False), ("breast_cancer", True), ("digits", False), ("digits_358", False),
         ("digits_358", True)]


@pytest.mark.parametrize("name,scaled", CASES)
def test_predictions_equal_sklearn_on_every_fold(cases, name, scaled):
    case = cases[name]
    res = case.jax[scaled]
    assert res.converged.all()
    agree = []
    for f, ((_, te), (clf, _, xe)) in enumerate(zip(case.splits, case.sk[scaled])):
        agree.append(np.mean(res.pred[f, te] == clf.predict(xe)))
    assert min(agree) >= 0.99, agree


@pytest.mark.parametrize("name,scaled", CASES)
def test_gamma_decision_values_rho_and_dual_close_to_sklearn(cases, name, scaled):
    case = cases[name]
    res = case.jax[scaled]
    pairs = js.class_pairs(case.k)
    for f, ((_, te), (clf, xt, xe)) in enumerate(zip(case.splits, case.sk[scaled])):
        np.testing.assert_allclose(res.gamma[f], clf._gamma, rtol=1e-12)
        same = res.pred[f, te] == clf.predict(xe)
        np.testing.assert_allclose(res.decision[f, te][same], _ovo(clf, xe)[same], atol=5e-3)
        np.testing.assert_allclose(res.rho[f], -clf._intercept_, atol=5e-3)
        # Each pair's dual objective 1/2 a'Qa - e'a from scikit-learn's dual coefficients.
        start = np.concatenate([[0], np.cumsum(clf.n_support_)])
        sv = xt[clf.support_]
        sq = np.square(sv).sum(1)
        kernel = np.exp(-clf._gamma * np.maximum(sq[:, None] + sq[None, :] - 2 * sv @ sv.T, 0))
        for p, (i, j) in enumerate(pairs):
            idx = np.r_[start[i]:start[i + 1], start[j]:start[j + 1]]
            coef = np.r_[clf._dual_coef_[j - 1, start[i]:start[i + 1]], clf._dual_coef_[i, start[j]:start[j + 1]]]
            obj = 0.5 * coef @ kernel[np.ix_(idx, idx)] @ coef - np.abs(coef).sum()
            np.testing.assert_allclose(res.dual_obj[f, p], obj, rtol=1e-3)


@pytest.mark.parametrize("name,scaled", [("breast_cancer", True), ("digits", False)])
def test_smo_steps_are_libsvms_without_shrinking(cases, name, scaled):
    case = cases[name]
    res = case.jax[scaled]
    ref = _sklearn_folds(case.x, case.y, case.splits, scaled, shrinking=False)
    n_iter = np.stack([clf.n_iter_ for clf, _, _ in ref])
    rho = np.stack([-clf._intercept_ for clf, _, _ in ref])
    # A kernel entry a float32 ulp away can change a tie; most problems replay libsvm's steps.
    same = (res.n_iter == n_iter) & (np.abs(res.rho - rho) < 1e-6)
    assert same.mean() >= 0.8, same.mean()


def test_vote_is_libsvms_with_its_tie_break(cases):
    case = cases["digits"]
    ties = 0
    for (_, te), (clf, _, xe) in zip(case.splits, case.sk[False]):
        d = _ovo(clf, xe)
        np.testing.assert_array_equal(np.asarray(js.ovo_vote(d, case.k)), clf.predict(xe))
        pairs = js.class_pairs(case.k)
        votes = np.zeros((len(te), case.k), int)
        np.add.at(votes, (np.arange(len(te))[:, None], np.where(d > 0, pairs[:, 0], pairs[:, 1])), 1)
        ties += ((votes == votes.max(1, keepdims=True)).sum(1) > 1).sum()
    assert ties > 0  # the tie-break was exercised


def test_chunks_of_any_count_share_one_program(cases):
    case = cases["digits_358"]
    _, mask = _folds(case.y)
    before = js._svc_program._cache_size()
    a = js.svc(case.x[None], case.y[None], np.zeros(N_FOLDS, np.int32), mask, n_classes=3, scaled=True, chunk=4)
    b = js.svc(case.x[None], case.y[None], np.zeros(7, np.int32), mask[:7], n_classes=3, scaled=True, chunk=4)
    assert js._svc_program._cache_size() - before == 1
    np.testing.assert_array_equal(a.pred, case.jax[True].pred)
    np.testing.assert_array_equal(b.pred, case.jax[True].pred[:7])


def test_a_fit_without_a_class_is_a_clear_error(cases):
    case = cases["digits_358"]
    mask = np.ones((1, len(case.y)), bool)
    mask[0, case.y == 2] = False
    with pytest.raises(ValueError, match="no training row of class 2"):
        js.svc(case.x[None], case.y[None], np.zeros(1, np.int32), mask, n_classes=3, scaled=False)


def test_auto_backend_fits_the_svm_in_jax_with_sklearns_scores(cases, monkeypatch):
    from icrst_jax import evaluation
    from icrst_jax.evaluation import auto_backend

    # On an accelerator auto fits the SVM in JAX; on a CPU only when asked (libsvm is faster there).
    monkeypatch.setattr(auto_backend, "JAX_SVC_ON_CPU", True)
    case = cases["breast_cancer"]
    jobs = [(case.x, case.y, 0, "none"), (case.x, case.y, 0, "standardised")]
    lines = []
    auto = evaluation.evaluate_many(jobs, ["svm"], backend="auto", fold_lines=False, progress=lines.append)
    assert any(line.startswith("[svm] 20 fits") and "JAX program" in line for line in lines), lines
    with threadpool_limits(1):
        ref = evaluation.evaluate_many(jobs, ["svm"], backend="sklearn", n_jobs=1, fold_lines=False)
    for a, r, (_, _, _, scaling) in zip(auto, ref, jobs):
        assert a["svm"]["fitted_on"] == scaling
        np.testing.assert_array_equal(a["svm"]["accuracy"]["folds"], r["svm"]["accuracy"]["folds"])
        assert a["svm"]["convergence_warnings"] == 0
