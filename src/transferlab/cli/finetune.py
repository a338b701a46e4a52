"""``transferlab finetune``: a new N-way head on a pretrained backbone, trained alone (on cached features), with the
last block, or with the whole network; compared with the linear SVM on the same split."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from transferlab.options import FINETUNE_MODES, OPTIMIZERS
from transferlab.cli.run import PROTOCOL_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune a pretrained backbone with a new head (head, last-block, full)",
                       epilog="Checkpoints every epoch to OUT/checkpoint.pth; running the same command again resumes "
                              "(Ctrl-C saves mid-epoch). The best epoch (on a validation split carved from train) is "
                              "saved as OUT/model.pth, which `predict` and `run` accept: --weights OUT/model.pth.")
    p.add_argument("--data", required=True,
                   help="dataset: a folder of class folders, a folder with train/ and test/ class folders, or 15scene")
    p.add_argument("--model", default="efficientnet_lite0", help="model name: see `transferlab models`")
    p.add_argument("--weights", default="auto", help="pretrained weights tag (or a file) to start from")
    p.add_argument("--mode", default="head", choices=FINETUNE_MODES,
                   help="head: new head on frozen cached features; last-block: + the last block; full: everything")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs (default 60 for head, 10 otherwise)")
    p.add_argument("--batch-size", type=int, default=32, help="images (or feature rows) per training step")
    p.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS, help="optimizer (with a cosine schedule)")
    p.add_argument("--lr", type=float, default=None, help="head learning rate (default AdamW 1e-3, SGD 1e-2)")
    p.add_argument("--backbone-lr-scale", type=float, default=0.1, help="backbone lr = lr × this")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay (default AdamW 0.01, SGD 1e-4)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="label smoothing of the cross-entropy loss")
    p.add_argument("--patience", type=int, default=None,
                   help="early stopping: epochs without validation improvement (default 10 for head, 3 otherwise)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation part of each training class")
    p.add_argument("--no-augment", action="store_true", help="no random resized crop / flip (image modes)")
    p.add_argument("--crop-scale", type=float, default=0.5, help="random resized crop area from this to 1")
    p.add_argument("--bn", default="frozen", choices=("frozen", "train"),
                   help="BatchNorm statistics in trained steps: frozen (ImageNet's) or updated")
    p.add_argument("--init-head", default="lp", choices=("lp", "random"),
                   help="image modes: start from the head trained on cached features (lp) or a random head")
    p.add_argument("--protocol", default="auto", help=PROTOCOL_HELP + " (fine-tuning takes one split: not random:N "
                                                      "with N > 1)")
    p.add_argument("--train-per-class", type=int, default=100, help="training images per class of a random:1 split")
    p.add_argument("--limit-per-class", type=int, default=None,
                   help="first K images (by name) per class and split: a quick subset (default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, training)")
    p.add_argument("--workers", type=int, default=None,
                   help="image decoding worker processes (default: CPUs - 1, between 1 and 4)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--no-compare-svm", action="store_true", help="skip the linear SVM on the same features/split")
    p.add_argument("--out", default=None, help="output folder (default runs/finetune-<model>-<mode>)")
    p.add_argument("--fresh", action="store_true", help="delete OUT/checkpoint.pth and start over")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="train at most N epochs in this call, then checkpoint and exit (resume later)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print finetune.json")


def run(args) -> int:
    from transferlab.data.datasets import load_dataset, resolve_protocol
    from transferlab.workflows.experiment import RunConfig
    from transferlab.finetune import CHECKPOINT, FinetuneConfig, finetune

    protocol, why = resolve_protocol(args.protocol, load_dataset(args.data, args.limit_per_class).has_fixed_split)
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
    if args.json:
        print(json.dumps(rec, indent=2, default=str))
        return 130 if rec["status"] == "interrupted" else 0
    if rec["status"] != "finished":
        last = rec["history"][-1] if rec["history"] else None
        print(f"{rec['status']} after {rec['epochs_run']} epoch(s)"
              + (f" (last val acc {last['val_acc']:.4f})" if last else "")
              + f"; checkpoint {out / CHECKPOINT}: run the same command again to resume")
        return 130 if rec["status"] == "interrupted" else 0
    lp = rec.get("linear_probe")
    print(f"{rec['model']} fine-tuned ({rec['mode']}, from {rec['provenance']['trained_from_layer']}): "
          f"{rec['epochs_run']} epoch(s){' (early stop)' if rec['stopped_early'] else ''}, best epoch "
          f"{rec['best_epoch']}; train {rec['images']['train']} / val {rec['images']['val']} / "
          f"test {rec['images']['test']} images" + (f"; head initialised by a linear probe (val acc "
                                                      f"{lp['val_acc']:.4f})" if lp else ""))
    print(f"test accuracy {rec['test_accuracy']:.4f} · mean per-class {rec['test_mean_class_accuracy']:.4f}")
    if "svm_accuracy" in rec:
        s = rec["svm"]
        print(f"linear SVM on {s['layer']} {s['pool']} + L2 features (C=1, {s['train_images']} training images, "
              f"same test split): {rec['svm_accuracy']:.4f}")
    print(f"saved {out / 'model.pth'}, {out / 'finetune.json'} ({time.perf_counter() - t0:.0f} s)")
    return 0
