"""The recognizer's manifest and the files manifests name: what parses but would make the device read
wrongly, run out of memory or crash is refused in one line naming the place (found by review: each was
accepted, or escaped as a traceback, before)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge.models.manifest import FORMAT_VERSION, ManifestError, TensorInfo, model_folders, parse_manifest
from edge.models.recognizer import choose
from edge.models.recognizer_manifest import (
    ReadingAgreement,
    RecognizerManifest,
    RecognizerVariant,
    load_recognizer_manifest,
)
from edge.models.runtime import find_runtime
from edge.models.selection import NoUsableModel
from tests.test_manifest import example

CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"


def recognizer_manifest(**changes: object) -> dict:
    tensor = TensorInfo(name="pixels", shape=[1, 64, -1, 1], dtype="float32", layout="NHWC")
    variants = [RecognizerVariant(name=name, file=f"english_g2_{name}.tflite", sha256="ab" * 32, bytes=10,
                                  target="cpu", input=tensor, output=tensor, op_counts={"WHILE": 2},
                                  agreement=ReadingAgreement("pytorch-fp32", 12, same, 0.01))
                for name, same in (("fp32", 1.0), ("dynamic", 0.99))]
    manifest = RecognizerManifest(FORMAT_VERSION, "2026-12-06T00:00:00+00:00", "0.1.0", "english_g2.pth",
                                  "cd" * 32, CHARSET, 64, [64, 128, 256], "in graph", {"torch": "2.13.0"},
                                  ["a#0"], variants)
    data = json.loads(json.dumps(manifest.__dict__, default=lambda o: o.__dict__))
    data.update(changes)
    return data


def write(folder: Path, data: object) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "manifest.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return folder


def test_a_well_formed_recognizer_manifest_loads(tmp_path: Path) -> None:
    manifest = load_recognizer_manifest(write(tmp_path, recognizer_manifest()))
    assert manifest.widths == [64, 128, 256] and [v.name for v in manifest.variants] == ["fp32", "dynamic"]


def variant_changed(index: int, **changes: object) -> list:
    variants = recognizer_manifest()["variants"]
    variants[index].update(changes)
    return variants


@pytest.mark.parametrize(("changes", "expected"), [
    ({"widths": [64, 30000]}, r"widths: \[64, 30000\] is not an ascending list of widths from 8 to 4096 px"),
    ({"input_height": 0}, r"input_height: 0 is not a height in pixels"),
    ({"input_height": 32}, r"variants\[0\].input.shape: \[1, 64, -1, 1\] does not take input_height 32"),
    ({"charset": CHARSET[:-1] + "0"}, r"charset: '0' more than once \(each character is one class\)"),
    ({"variants": variant_changed(1, name="fp32")}, r"variants\[1\].name: 'fp32' is listed more than once"),
    ({"variants": variant_changed(1, name="int8")}, r"variants\[1\].name: 'int8' is not one of"),
    ({"variants": variant_changed(0, file="../../other/english_g2_fp32.tflite")},
     r"variants\[0\].file: '../../other/english_g2_fp32.tflite' is not the name of a file beside the manifest"),
    ({"variants": variant_changed(0, file="/tmp/english_g2_fp32.tflite")}, r"variants\[0\].file: '/tmp/"),
    ({"variants": variant_changed(0, file="..")}, r"variants\[0\].file: '..' is not the name of a file"),
])
def test_a_recognizer_manifest_that_parses_but_would_read_wrongly_is_refused(tmp_path: Path, changes: dict,
                                                                             expected: str) -> None:
    with pytest.raises(ManifestError, match=expected) as caught:
        load_recognizer_manifest(write(tmp_path, recognizer_manifest(**changes)))
    assert str(caught.value).startswith(f"{tmp_path / 'manifest.json'}") and "\n" not in str(caught.value)


def test_a_detector_manifest_file_path_out_of_its_folder_is_refused() -> None:
    data = json.loads(example().to_json())
    data["variants"][0]["file"] = "/elsewhere/m.tflite"
    with pytest.raises(ManifestError, match=r"m.json.variants\[0\].file: '/elsewhere/m.tflite' is not the name"):
        parse_manifest(json.dumps(data), "m.json")


def test_a_detector_folder_named_as_the_recognizer_is_said_so(tmp_path: Path) -> None:
    """It said "format_version 2, this craft-edge reads recognizer manifests of format 3"."""
    with pytest.raises(ManifestError, match="a detector folder's manifest, not the text recognizer's"):
        load_recognizer_manifest(write(tmp_path, example().to_json()))


@pytest.mark.parametrize("text", ['{"format_version": 3, "created": ' + "9" * 5000 + "}",
                                  "[" * 200_000 + "]" * 200_000])
def test_json_python_cannot_read_is_a_manifest_error(tmp_path: Path, text: str) -> None:
    """A number past Python's 4,300 digits (ValueError) or nesting past its recursion limit (RecursionError)
    escaped as a traceback: exit 1 from the daemon, and systemd restarting it for ever. At the device's
    recursion limit, Python's own: onnx2tf, imported by the converter's tests, lifts it to 2**31 - 1, and the
    JSON decoder's recursion then overflows the C stack (a segmentation fault) before any limit."""
    lifted = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        for load in (model_folders, load_recognizer_manifest):
            with pytest.raises(ManifestError, match="not JSON this craft-edge reads"):
                load(write(tmp_path, text))
    finally:
        sys.setrecursionlimit(lifted)


def test_a_variant_without_an_agreement_is_skipped_saying_so(tmp_path: Path) -> None:
    data = recognizer_manifest(variants=variant_changed(0, agreement=None)[:1])
    manifest = load_recognizer_manifest(write(tmp_path, data))
    with pytest.raises(NoUsableModel, match=r"\(fp32: no agreement with PyTorch recorded\)"):
        choose(tmp_path, manifest, find_runtime(), 1, None)


def test_a_recognizer_with_no_variant_says_why_the_converter_left_each_out(tmp_path: Path) -> None:
    """It said only "it has no CPU variant", hiding the reasons the manifest records."""
    data = recognizer_manifest(variants=[], rejected={"dynamic": "reads like PyTorch on 93.5% of 434 crops"})
    manifest = load_recognizer_manifest(write(tmp_path, data))
    with pytest.raises(NoUsableModel, match=r"\(it has no CPU variant; the converter left out dynamic: reads like "
                                            r"PyTorch on 93.5% of 434 crops\)"):
        choose(tmp_path, manifest, find_runtime(), 1, None)


def test_a_variant_whose_file_is_missing_is_said_to_be_missing(tmp_path: Path) -> None:
    """It said the file "does not match its manifest sha256"."""
    manifest = load_recognizer_manifest(write(tmp_path, recognizer_manifest()))
    with pytest.raises(NoUsableModel, match=f"recognizer fp32: {tmp_path / 'english_g2_fp32.tflite'} is missing"):
        choose(tmp_path, manifest, find_runtime(), 1, "fp32")
