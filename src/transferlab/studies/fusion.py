"""Late fusion: one linear SVM per feature set (C by cross-validation on train), their decision values combined
with weights chosen on out-of-fold decision values of the training images; against concatenating the features
and against each member alone. The test set is scored once per row of the table."""
from __future__ import annotations

import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from transferlab.classify.fusion import ascent_weights, weighted_sum
from transferlab.classify.selection import accuracy, fit_and_score, folds_of
from transferlab.features.views import PLAIN
from transferlab.studies.finetuned import finetuned_rows, load_finetuned
from transferlab.studies.members import default_backbones, load_members
from transferlab.studies.record import make_record
from transferlab.studies.registry import STUDIES


class _Equal:
    """Sum of the (scaled) decision values."""

    def fit(self, decisions, y):
        self.weights_ = np.ones(len(decisions))
        return self

    def decide(self, decisions):
        return weighted_sum(self.weights_, decisions)


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


def over_splits(cfg, ms, name: str, x: np.ndarray) -> dict:
    """The SVM on features ``x`` under every split of the protocol (literature's ``random:N``): C chosen by CV
    on each split's training images, each split's test images scored once."""
    accs, t0 = [], time.perf_counter()
    for sp in ms.splits:
        tr, te = np.asarray(sp.train), np.asarray(sp.test)
        accs.append(fit_and_score(x[tr], ms.y[tr], x[te], ms.y[te], seed=cfg.seed,
                                  classifier=cfg.classifier).test_accuracy)
    return {"features": name, "protocol": cfg.protocol, "splits": len(accs),
            "mean_accuracy": round(float(np.mean(accs)), 4), "std_accuracy": round(float(np.std(accs, ddof=1)), 4),
            "per_split": accs, "test_images": [len(sp.test) for sp in ms.splits],
            "seconds": round(time.perf_counter() - t0, 1)}


def fusion(cfg, backbones=None, finetuned=()):
    """The fusion study on ``cfg``'s data: members are each (model, weights, layers) of ``backbones`` (default:
    those of ``study backbones``), one member per layer; ``finetuned``: folders of finished fine-tuning runs on
    the same split, fused with the SVM that cross-validation prefers (:mod:`transferlab.studies.finetuned`)."""
    ms = load_members(cfg, backbones or default_backbones())
    nets = load_finetuned(cfg, finetuned, ms)  # first: a wrong folder is said before the long part
    y, tr, te = ms.y, ms.train, ms.test
    rows, oof, test_dec, svms = [], [], [], {}  # svms: features -> (x, test decision values)
    for name, m in ms.members.items():
        x = m.x[PLAIN]
        t0 = time.perf_counter()
        s = fit_and_score(x[tr], y[tr], x[te], y[te], seed=cfg.seed, classifier=cfg.classifier)
        scale = float(s.selection["oof"].std()) or 1.0  # members' decision values on one scale before they are summed
        oof.append(s.selection["oof"] / scale)
        test_dec.append(s.test_scores / scale)
        svms[name] = (x, s.test_scores)
        rows.append({"features": name, "kind": "member", "weights": m.label, "dim": int(x.shape[1]), "C": s.C,
                     "cv_accuracy": s.cv_accuracy, "test_accuracy": s.test_accuracy,
                     "ms_per_image": m.ms_per_image, "extract_seconds": m.extract_seconds[PLAIN],
                     "fit_seconds": round(time.perf_counter() - t0, 2)})
    names = list(ms.members)
    x = np.concatenate([ms.members[n].x[PLAIN] for n in names], axis=1)
    t0 = time.perf_counter()
    s = fit_and_score(x[tr], y[tr], x[te], y[te], seed=cfg.seed, classifier=cfg.classifier)
    svms["concatenation of all members"] = (x, s.test_scores)
    per_model = {n.split(":")[0]: ms.members[n].ms_per_image for n in names}  # a model's layers share its pass
    total_ms = round(sum(per_model.values()), 2)
    rows.append({"features": "concatenation of all members", "kind": "concatenation", "weights": "each L2-normalised",
                 "dim": int(x.shape[1]), "C": s.C, "cv_accuracy": s.cv_accuracy, "test_accuracy": s.test_accuracy,
                 "ms_per_image": total_ms, "extract_seconds": None, "fit_seconds": round(time.perf_counter() - t0, 2)})
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
    chosen = cv_chosen = max(rows, key=lambda r: r["cv_accuracy"])  # the configuration the training data pick
    best_member = max(rows[:len(names)], key=lambda r: r["cv_accuracy"])
    notes = [f"highest cross-validated accuracy on train: {cv_chosen['features']} — "
             f"CV {cv_chosen['cv_accuracy']:.4f}, test {cv_chosen['test_accuracy']:.4f}",
             f"best member by CV: {best_member['features']} (test {best_member['test_accuracy']:.4f}); concatenation: "
             f"test {rows[len(names)]['test_accuracy']:.4f}",
             "late-fusion CV accuracy is a second-level 5-fold CV over the members' out-of-fold decision values; "
             "members' decision values are divided by their out-of-fold standard deviation before combining",
             f"{len(tr)} training and {len(te)} test images read by every member"]
    extra = {"fusion_weights": weights}
    svm = max((r for r in rows if r["kind"] != "late fusion"), key=lambda r: r["cv_accuracy"])  # the best one SVM
    if nets:
        ft_rows, ft_weights, ft_split = finetuned_rows(cfg, ms, svm, *svms[svm["features"]], nets)
        rows += ft_rows
        chosen = max(ft_rows, key=lambda r: r["val_accuracy"])  # ties keep the SVM alone, then the simpler row
        extra |= {"finetuned_fusion_weights": ft_weights, "finetuned_runs": ft_split["runs"]}
        notes += [f"chosen on the fine-tuned networks' validation split: {chosen['features']} — validation "
                  f"{chosen['val_accuracy']:.4f}, test {chosen['test_accuracy']:.4f}",
                  f"the validation split: {ft_split['validation_images']} training images the networks did not train "
                  f"on (the SVM is refitted on the other {ft_split['fit_images']} to decide them); it chooses flip "
                  "TTA or not per network, the fusion weights, and the row",
                  "fine-tuned networks' scores are log-probabilities, the SVM's decision values; each is divided by "
                  "its standard deviation on the validation split before they are summed"]
    if len(ms.splits) > 1:
        extra["protocol"] = [over_splits(cfg, ms, svm["features"], svms[svm["features"]][0])]
        p = extra["protocol"][0]
        notes.append(f"{cfg.protocol} (every split, C by 5-fold CV on its own training images): {svm['features']} "
                     f"{p['mean_accuracy']:.4f} ± {p['std_accuracy']:.4f}; the rows above are the first split")
    for r in rows:
        r["chosen"] = r is chosen
    columns = ["features", "kind", "dim", "C", "cv_accuracy", *(["val_accuracy"] if nets else []),
               "test_accuracy", "ms_per_image", "extract_seconds", "fit_seconds", "chosen"]
    return make_record("fusion", STUDIES["fusion"].question, cfg, ms.model, ms.dataset, columns, rows, chosen, notes,
                       extra)
