"""Late fusion: one linear SVM per feature set (C by cross-validation on train), their decision values combined
with weights chosen on out-of-fold decision values of the training images; against concatenating the features
and against each member alone. The test set is scored once per row of the table."""
from __future__ import annotations

import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from transferlab.classify.oof import accuracy, choose_C, fit_decide, folds_of
from transferlab.features.views import PLAIN
from transferlab.plots.studies import fusion_figure
from transferlab.workflows.members import default_backbones, load_members
from transferlab.workflows.study_record import make_record

QUESTION = "Late fusion: do several networks' SVM decision values, weighted by cross-validation on train, beat " \
           "concatenating their features? (issue 13)"
WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def ascent_weights(decisions: list[np.ndarray], y: np.ndarray, sweeps: int = 3) -> np.ndarray:
    """Per-member weights from ``WEIGHT_GRID`` by coordinate ascent on the accuracy of the weighted sum, from
    equal weights (a change must strictly improve accuracy: ties keep the simpler equal weights)."""
    w = np.ones(len(decisions))
    best = accuracy(sum(wi * d for wi, d in zip(w, decisions)), y)
    for _ in range(sweeps):
        changed = False
        for i in range(len(w)):
            for v in WEIGHT_GRID:
                t = w.copy()
                t[i] = v
                if t.sum() == 0:
                    continue
                a = accuracy(sum(wi * d for wi, d in zip(t, decisions)), y)
                if a > best + 1e-12:
                    best, w, changed = a, t, True
        if not changed:
            break
    return w


class _Equal:
    """Sum of the (scaled) decision values."""

    def fit(self, decisions, y):
        self.weights_ = np.ones(len(decisions))
        return self

    def decide(self, decisions):
        return sum(w * d for w, d in zip(self.weights_, decisions))


class _Ascent(_Equal):
    """Weighted sum, weights by coordinate ascent on accuracy."""

    def fit(self, decisions, y):
        self.weights_ = ascent_weights(decisions, y)
        return self


class _Stacker:
    """Multinomial logistic regression on all members' decision values side by side."""

    def fit(self, decisions, y):
        self.model_ = LogisticRegression(C=1.0, max_iter=3000).fit(np.hstack(decisions), y)
        return self

    def decide(self, decisions):
        return self.model_.decision_function(np.hstack(decisions))


COMBINERS = {"equal weights": _Equal, "CV weights (coordinate ascent)": _Ascent, "logistic stacker": _Stacker}


def combiner_cv(combiner, decisions: list[np.ndarray], y: np.ndarray, seed: int) -> float:
    """Accuracy of a combiner fitted on 4/5 of the training images' out-of-fold values and scored on the other
    fifth (a second level of cross-validation: the weights never see the images they are judged on)."""
    hits = 0
    for fit_rows, held in folds_of(y, 5, seed + 1):
        c = combiner().fit([d[fit_rows] for d in decisions], y[fit_rows])
        hits += int((c.decide([d[held] for d in decisions]).argmax(1) == y[held]).sum())
    return round(hits / len(y), 4)


def fusion(cfg, backbones=None):
    """The fusion study on ``cfg``'s data: members are each (model, weights, layers) of ``backbones`` (default:
    those of ``study backbones``), one member per layer."""
    ms = load_members(cfg, backbones or default_backbones())
    y, tr, te = ms.y, ms.train, ms.test
    rows, oof, test_dec = [], [], []
    for name, m in ms.members.items():
        x = m.x[PLAIN]
        sel = choose_C(x[tr], y[tr], seed=cfg.seed, classifier=cfg.classifier)
        t0 = time.perf_counter()
        d_test = fit_decide(x[tr], y[tr], x[te], sel["C"], classifier=cfg.classifier, seed=cfg.seed)
        scale = float(sel["oof"].std()) or 1.0  # members' decision values on one scale before they are summed
        oof.append(sel["oof"] / scale)
        test_dec.append(d_test / scale)
        rows.append({"features": name, "kind": "member", "weights": m.label, "dim": int(x.shape[1]), "C": sel["C"],
                     "cv_accuracy": sel["cv_accuracy"], "test_accuracy": round(accuracy(d_test, y[te]), 4),
                     "ms_per_image": m.ms_per_image, "extract_seconds": m.extract_seconds[PLAIN],
                     "fit_seconds": round(sel["seconds"] + time.perf_counter() - t0, 2)})
    names = list(ms.members)
    x = np.concatenate([ms.members[n].x[PLAIN] for n in names], axis=1)
    sel = choose_C(x[tr], y[tr], seed=cfg.seed, classifier=cfg.classifier)
    t0 = time.perf_counter()
    d_test = fit_decide(x[tr], y[tr], x[te], sel["C"], classifier=cfg.classifier, seed=cfg.seed)
    per_model = {n.split(":")[0]: ms.members[n].ms_per_image for n in names}  # a model's layers share its pass
    total_ms = round(sum(per_model.values()), 2)
    rows.append({"features": "concatenation of all members", "kind": "concatenation", "weights": "each L2-normalised",
                 "dim": int(x.shape[1]), "C": sel["C"], "cv_accuracy": sel["cv_accuracy"],
                 "test_accuracy": round(accuracy(d_test, y[te]), 4), "ms_per_image": total_ms,
                 "extract_seconds": None, "fit_seconds": round(sel["seconds"] + time.perf_counter() - t0, 2)})
    weights = []
    for label, combiner in COMBINERS.items():
        t0 = time.perf_counter()
        cv = combiner_cv(combiner, oof, y[tr], cfg.seed)
        fitted = combiner().fit(oof, y[tr])
        d = fitted.decide(test_dec)
        rows.append({"features": f"late fusion: {label}", "kind": "late fusion", "weights": label,
                     "dim": len(names), "C": None, "cv_accuracy": cv, "test_accuracy": round(accuracy(d, y[te]), 4),
                     "ms_per_image": total_ms, "extract_seconds": None,
                     "fit_seconds": round(sum(r["fit_seconds"] for r in rows[:len(names)]) + time.perf_counter() - t0,
                                          2)})
        if hasattr(fitted, "weights_"):
            weights.append({"combiner": label, **{n: float(w) for n, w in zip(names, fitted.weights_)}})
    chosen = max(rows, key=lambda r: r["cv_accuracy"])  # the configuration the training data pick
    for r in rows:
        r["chosen"] = r is chosen
    best_member = max(rows[:len(names)], key=lambda r: r["cv_accuracy"])
    notes = [f"chosen on train (highest cross-validated accuracy): {chosen['features']} — CV {chosen['cv_accuracy']:.4f}, "
             f"test {chosen['test_accuracy']:.4f}",
             f"best member by CV: {best_member['features']} (test {best_member['test_accuracy']:.4f}); concatenation: "
             f"test {rows[len(names)]['test_accuracy']:.4f}",
             "late-fusion CV accuracy is a second-level 5-fold CV over the members' out-of-fold decision values; "
             "members' decision values are divided by their out-of-fold standard deviation before combining",
             f"{len(tr)} training and {len(te)} test images read by every member"]
    fig = fusion_figure(rows, weights, f"{cfg.classifier} per member · C by 5-fold CV on train")
    columns = ["features", "kind", "dim", "C", "cv_accuracy", "test_accuracy", "ms_per_image", "extract_seconds",
               "fit_seconds", "chosen"]
    record = make_record("fusion", QUESTION, cfg, ms.model, ms.dataset, columns, rows, chosen, notes,
                         {"fusion_weights": weights} if weights else None)
    return record, fig
