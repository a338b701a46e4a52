"""``transferlab finetune``: a new N-way head on a pretrained backbone, trained alone (on cached features), with the
last block, or with the whole network; compared with the linear SVM on the same split."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from transferlab.config import RunConfig
from transferlab.data.datasets import load_dataset, resolve_protocol
from transferlab.deploy.finetuned import write_finetune_card
from transferlab.finetune import CHECKPOINT, MODEL, RECORD, FinetuneConfig, finetune
from transferlab.plots.confusion import confusion_figure


def run(args) -> int:
    dataset = load_dataset(args.data, args.limit_per_class)
    protocol, why = resolve_protocol(args.protocol, dataset.has_fixed_split, dataset.root)
    if protocol != args.protocol:
        print(f"protocol {protocol}: {why}", file=sys.stderr if args.json else sys.stdout)
    out = Path(args.out or f"runs/finetune-{args.model}-{args.mode}")
    if args.fresh and (out / CHECKPOINT).exists():
        (out / CHECKPOINT).unlink()
    run_cfg = RunConfig(data=args.data, model=args.model, weights=args.weights, protocol=protocol,
                        train_per_class=args.train_per_class, limit_per_class=args.limit_per_class, seed=args.seed,
                        batch_size=args.batch_size, workers=args.workers, device=args.device, cache=args.cache,
                        progress=False if args.quiet else None)
    cfg = FinetuneConfig(
        run=run_cfg, out=str(out), mode=args.mode, epochs=args.epochs, optimizer=args.optimizer, lr=args.lr,
        backbone_lr_scale=args.backbone_lr_scale, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, patience=args.patience, val_fraction=args.val_fraction,
        augment=not args.no_augment, crop_scale=args.crop_scale, bn=args.bn, init_head=args.init_head,
        compare_svm=not args.no_compare_svm)
    t0 = time.perf_counter()
    rec = finetune(cfg, stop_after=args.stop_after)
    if rec.status == "finished":
        confusion_figure(np.array(rec.test_confusion_matrix), rec.classes, path=out / "confusion.png",
                         title=f"fine-tuned {rec.model} ({rec.mode}) · test acc {rec.test_accuracy:.3f}")
        card = write_finetune_card(out)
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2))
        return 130 if rec.status == "interrupted" else 0
    if rec.status != "finished":
        last = rec.history[-1] if rec.history else None
        print(f"{rec.status} after {rec.epochs_run} epoch(s)"
              + (f" (last val acc {last.val_acc:.4f})" if last else "")
              + f"; checkpoint {out / CHECKPOINT}: run the same command again to resume")
        return 130 if rec.status == "interrupted" else 0
    lp, images = rec.linear_probe, rec.images
    print(f"{rec.model} fine-tuned ({rec.mode}, from {rec.provenance.trained_from_layer}): "
          f"{rec.epochs_run} epoch(s){' (early stop)' if rec.stopped_early else ''}, best epoch "
          f"{rec.best_epoch}; train {images.train} / val {images.val} / test {images.test} images"
          + (f"; head initialised by a linear probe (val acc {lp['val_acc']:.4f})" if lp else ""))
    print(f"test accuracy {rec.test_accuracy:.4f} · mean per-class {rec.test_mean_class_accuracy:.4f}")
    if rec.svm:
        s = rec.svm
        print(f"linear SVM on {s.layer} {s.pool} + L2 features (C=1, {s.train_images} training images, "
              f"same test split): {rec.svm_accuracy:.4f}")
    print(f"saved {out / MODEL}, {out / RECORD}, {out / 'confusion.png'}, {card} ({time.perf_counter() - t0:.0f} s); "
          f"transferlab classify {out} IMAGE…")
    return 0
