"""The recognizer's variants against PyTorch english_g2, in one process: agreement, accuracy, speed.

    python bench/recognition.py --model models [--eval-rec ../shared/eval-rec] \\
        [--ic15 ../shared/eval-ic15train] [--threads 2] [--margins 0,0.05,0.1,0.15,0.2] \\
        [--buckets 64-step,128/256/512,512] [--limit N]

Word crops: the project's own (ground-truth words of edge/samples, converter/calibration_frames and
data/smalltext, cut with ``word_crop``), the labelled crops of ``--eval-rec`` (read whole) and the
ground-truth words of ``--ic15`` (cut with ``word_crop``). Every reader goes through the device's
``Reader`` (resize, contrast stretch, padding to the manifest's widths, greedy CTC);
PyTorch is the converter's model behind the same reader, so the strings compare like for like.

Reports, per set and reader: (a) the share of crops read exactly as PyTorch reads them; (b) word
accuracy against the labels, two ways: case-insensitive letters and digits only ("alnum", eval-rec's
protocol) and case-insensitive with leading/trailing punctuation dropped ("ic15", ICDAR's), beside
EasyOCR 1.7.2's own (the reference files of the sets); (c) milliseconds per word (all crops read
once, preprocessing included) and words per second, and the speed-up over PyTorch
on the same crops in this run: over the fastest of its batched readers (each width's crops in one
batch on 1 and on 2 threads: on a busy two-core machine its 2-thread pool can be far slower; and in
batches of 8 on ``--threads``, ``pytorch-Nt-b8``, which can beat one large batch), and over PyTorch
reading word by word (``pytorch-Nt-each``), as the TFLite runner does.
``--margins``: ic15 accuracy of the default variant with other crop margins. ``--buckets``: the
default variant's speed and agreement when crops are padded to other width sets. x86 figures only
for the machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter.recognizer_model import HEIGHT, default_recognizer_weights, load_recognizer
from converter.word_crops import labelled_words
from edge.commands.common import thread_count
from edge.config.paths import absolute
from edge.models.manifest import recognizer_folder
from edge.models.recognizer import load_variant
from edge.models.recognizer_manifest import load_recognizer_manifest
from edge.models.runtime import default_threads, find_runtime
from edge.recognition.crops import MARGIN
from edge.recognition.reader import Reader

REPO = Path(__file__).resolve().parent.parent
PROJECT_FOLDERS = ("edge/samples", "converter/calibration_frames", "data/smalltext")
BUCKET_SETS = {"64-step": tuple(range(64, 1025, 64)), "128/256/512": (128, 256, 512), "512": (512,)}


@dataclass
class CropSet:
    name: str
    crops: list[np.ndarray]
    labels: list[str]
    easyocr: list[str] | None  # EasyOCR 1.7.2's readings of the same words, where the set has them


def alnum(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def ic15(text: str) -> str:
    return text.lower().strip(string.punctuation)


def accuracy(readings: list[str], labels: list[str], norm: type[str] | object) -> float:
    return sum(norm(r) == norm(t) for r, t in zip(readings, labels, strict=True)) / len(labels)  # type: ignore[operator]


def project_set(margin: float) -> CropSet:
    words = [w for folder in PROJECT_FOLDERS for w in labelled_words(REPO / folder, margin)]
    return CropSet("project", [w.crop for w in words], [w.text for w in words], None)


def eval_rec_sets(root: Path) -> list[CropSet]:
    sets = []
    for part in ("iiit5k_train", "svt_train"):
        labels = json.loads((root / part / "labels.json").read_text())
        reference = json.loads((root / part / "reference_easyocr.json").read_text())
        names = sorted(labels)
        crops = [cv2.imread(str(root / part / "images" / name), cv2.IMREAD_GRAYSCALE) for name in names]
        sets.append(CropSet(part, crops, [labels[n] for n in names], [reference[n]["text"] for n in names]))
    return sets


def ic15_set(root: Path, margin: float) -> CropSet:
    words = labelled_words(root / "gt", margin, images=root / "images")
    reference = {}
    for path in sorted((root / "reference_easyocr_read_gt").glob("*.json")):
        for index, word in enumerate(json.loads(path.read_text())["words"]):
            reference[f"{path.stem}#{index}"] = word["text"]
    return CropSet("ic15train", [w.crop for w in words], [w.text for w in words], [reference[w.name] for w in words])


class TorchModel:
    """PyTorch english_g2 as a ``SequenceModel``, for the same ``Reader``: the crops of one width in one batch
    (the reader groups them; ``batch`` 0), or in batches of ``batch`` (1: word by word, as the TFLite runner
    and EasyOCR's default ``batch_size=1`` read them)."""

    def __init__(self, widths: tuple[int, ...], threads: int, batch: int = 0) -> None:
        import torch

        self.model = load_recognizer(default_recognizer_weights())
        self.height, self.widths, self.threads = HEIGHT, widths, threads
        self.lanes = 1  # one call at a time: its threads are PyTorch's own
        self.batch = batch
        self._torch = torch

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self._torch.set_num_threads(self.threads)
        size = self.batch or len(pixels)
        batches = [pixels[i:i + size] for i in range(0, len(pixels), size)]
        with self._torch.no_grad():
            return np.concatenate([self.model(self._torch.from_numpy(b[:, None].astype(np.float32))).numpy()
                                   for b in batches])


def timed_read(reader: Reader, crops: list[np.ndarray]) -> tuple[list[str], float]:
    reader.read(crops[:2])  # warm-up
    start = time.perf_counter()
    texts = [r.text for r in reader.read(crops)]
    return texts, (time.perf_counter() - start) * 1e3 / len(crops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=absolute, required=True, help="convert-for-device output (with a recognizer)")
    parser.add_argument("--eval-rec", type=absolute, help="../shared/eval-rec")
    parser.add_argument("--ic15", type=absolute, help="../shared/eval-ic15train")
    parser.add_argument("--threads", type=thread_count, default=2, help="0: one per core")
    parser.add_argument("--margins", default="", help="comma-separated crop margins to compare on ic15")
    parser.add_argument("--buckets", default="", help=f"comma-separated width sets of {', '.join(BUCKET_SETS)}")
    parser.add_argument("--limit", type=int, default=0, help="at most N crops a set (0: all)")
    args = parser.parse_args()
    args.threads = args.threads or default_threads()

    folder = recognizer_folder(args.model)
    if folder is None:
        parser.error(f"{args.model} has no recognizer")
    manifest = load_recognizer_manifest(folder)
    widths = tuple(manifest.widths)
    runtime = find_runtime()
    sets = [project_set(MARGIN)]
    sets += eval_rec_sets(args.eval_rec) if args.eval_rec else []
    sets += [ic15_set(args.ic15, MARGIN)] if args.ic15 else []
    if args.limit:
        sets = [CropSet(s.name, s.crops[:args.limit], s.labels[:args.limit], s.easyocr and s.easyocr[:args.limit])
                for s in sets]
    readers = {f"pytorch-{n}t": Reader(TorchModel(widths, n), manifest.charset, f"pytorch-{n}t") for n in (1, 2)}
    eights = f"pytorch-{args.threads}t-b8"
    readers[eights] = Reader(TorchModel(widths, args.threads, batch=8), manifest.charset, eights)
    each = f"pytorch-{args.threads}t-each"  # word by word, like for like with the TFLite runner
    readers[each] = Reader(TorchModel(widths, args.threads, batch=1), manifest.charset, each)
    for variant in manifest.variants:
        runner = load_variant(folder, manifest, variant, runtime, args.threads)
        readers[variant.name] = Reader(runner, manifest.charset, variant.name)

    print(f"x86 ({runtime.describe()}, {args.threads} threads); widths {widths[0]}..{widths[-1]} ({len(widths)})")
    total_ms: dict[str, float] = dict.fromkeys(readers, 0.0)
    count = 0
    for crop_set in sets:
        results = {name: timed_read(reader, crop_set.crops) for name, reader in readers.items()}
        count += len(crop_set.crops)
        reference = results["pytorch-1t"][0]
        print(f"\n{crop_set.name}: {len(crop_set.crops)} crops")
        print(f"  {'reader':<16} {'same as PyTorch':>15} {'acc alnum':>9} {'acc ic15':>9} {'ms/word':>8} "
              f"{'words/s':>8}")
        for name, (texts, ms) in results.items():
            total_ms[name] += ms * len(crop_set.crops)
            same = sum(a == b for a, b in zip(texts, reference, strict=True)) / len(texts)
            print(f"  {name:<16} {same:>15.2%} {accuracy(texts, crop_set.labels, alnum):>9.3f} "
                  f"{accuracy(texts, crop_set.labels, ic15):>9.3f} {ms:>8.1f} {1e3 / ms:>8.1f}")
        if crop_set.easyocr is not None:
            print(f"  {'EasyOCR':<16} {'':>15} {accuracy(crop_set.easyocr, crop_set.labels, alnum):>9.3f} "
                  f"{accuracy(crop_set.easyocr, crop_set.labels, ic15):>9.3f}")
    baseline = min(total_ms["pytorch-1t"], total_ms["pytorch-2t"], total_ms[eights])
    print(f"\nall {count} crops: ms per word and speed-up over PyTorch's fastest batched reader, and over "
          f"PyTorch word by word ({each}; same run)")
    for name, ms in total_ms.items():
        print(f"  {name:<16} {ms / count:8.1f} ms  {count * 1e3 / ms:6.1f} words/s  x{baseline / ms:.2f}  "
              f"x{total_ms[each] / ms:.2f}")

    default = min((v for v in manifest.variants if v.agreement and v.agreement.same_text >= 0.98),
                  key=lambda v: total_ms[v.name]).name
    if args.margins and args.ic15:
        print(f"\nic15 word accuracy by crop margin ({default}):")
        for margin in (float(m) for m in args.margins.split(",")):
            crop_set = ic15_set(args.ic15, margin)
            texts = [r.text for r in readers[default].read(crop_set.crops)]
            print(f"  margin {margin:.2f}: alnum {accuracy(texts, crop_set.labels, alnum):.3f}  "
                  f"ic15 {accuracy(texts, crop_set.labels, ic15):.3f}")
    if args.buckets:
        crops = [c for s in sets for c in s.crops]
        reference, _ = timed_read(readers[default], crops)
        runner = readers[default].model
        print(f"\npadding widths ({default}, all {len(crops)} crops):")
        for name in args.buckets.split(","):
            runner.widths = BUCKET_SETS[name]
            texts, ms = timed_read(readers[default], crops)
            same = sum(a == b for a, b in zip(texts, reference, strict=True)) / len(texts)
            print(f"  {name:<12} {ms:6.1f} ms/word  {1e3 / ms:6.1f} words/s  same as {widths[0]}..{widths[-1]}: "
                  f"{same:.2%}")
        runner.widths = widths
    return 0


if __name__ == "__main__":
    sys.exit(main())
