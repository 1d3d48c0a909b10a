"""``SequenceRunner``'s interpreters (lanes) with an interpreter written out here: how many, what a failed
allocation leaves behind, and a lane that never comes back."""

from __future__ import annotations

import numpy as np
import pytest

from edge.models import recognizer
from edge.models.recognizer import SequenceRunner, lanes_for
from edge.models.runtime import ModelLoadError


class FakeInterpreter:
    """TFLite's interpreter as the runner uses it: (1, 16, W, 1) pixels -> (1, W/4, 3), the first class
    certain where the pixels are dark. As TFLite's, a resize changes the input's shape at once and the
    tensors are unusable until allocated; ``fail_allocations`` makes that many next allocations raise."""

    def __init__(self) -> None:
        self.shape = [1, 16, 32, 1]
        self.allocated = True
        self.fail_allocations = 0
        self.pixels = np.zeros(self.shape, np.float32)
        self.broken = False  # every probability NaN

    def get_input_details(self) -> list[dict]:
        return [{"name": "pixels", "index": 0, "shape": np.array(self.shape), "dtype": np.float32}]

    def get_output_details(self) -> list[dict]:
        return [{"name": "probs", "index": 1, "shape": np.array([1, self.shape[2] // 4, 3]), "dtype": np.float32}]

    def resize_tensor_input(self, index: int, shape: list[int]) -> None:
        self.shape, self.allocated = shape, False

    def allocate_tensors(self) -> None:
        if self.fail_allocations:
            self.fail_allocations -= 1
            raise RuntimeError("arena allocation failed")
        self.allocated = True

    def reset_all_variables(self) -> None:
        pass

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        if not self.allocated or list(value.shape) != self.shape:
            raise ValueError(f"got {value.shape}, the input is {self.shape}, allocated: {self.allocated}")
        self.pixels = value

    def invoke(self) -> None:
        pass

    def get_tensor(self, index: int) -> np.ndarray:
        steps = self.pixels[0, :, :, 0].reshape(16, -1, 4).mean(axis=(0, 2))
        probs = np.zeros((1, len(steps), 3), np.float32)
        probs[0, :, 0] = steps < 128
        probs[0, :, 1] = steps >= 128
        return probs * np.nan if self.broken else probs


def test_one_interpreter_a_thread_up_to_the_cores_and_eight() -> None:
    assert lanes_for(1, 4) == [1] and lanes_for(4, 4) == [1, 1, 1, 1]
    assert lanes_for(8, 4) == [2, 2, 2, 2]  # more threads than cores: four interpreters share them
    assert lanes_for(12, 64) == [2, 2, 2, 2, 1, 1, 1, 1]  # none lost past eight
    with pytest.raises(ValueError, match="at least one thread, not 0"):
        lanes_for(0, 4)


def test_only_the_first_interpreter_is_sized_before_it_reads() -> None:
    first, second = FakeInterpreter(), FakeInterpreter()
    runner = SequenceRunner([first, second], 16, (32, 64))
    assert runner.specs()[0].shape == (1, 16, 64, 1) and second.shape == [1, 16, 32, 1]
    runner(np.zeros((1, 16, 32), np.uint8))
    assert runner.specs()[0].shape == (1, 16, 64, 1)  # what was checked at load, not what a lane holds now


def test_a_failed_allocation_is_tried_again_by_the_next_read_of_the_same_width() -> None:
    interpreter = FakeInterpreter()
    runner = SequenceRunner([interpreter], 16, (32, 64))
    assert runner(np.zeros((1, 16, 32), np.uint8)).shape == (1, 8, 3)
    interpreter.fail_allocations = 1
    with pytest.raises(RuntimeError, match="arena allocation failed"):
        runner(np.zeros((1, 16, 64), np.uint8))
    # the input is 64 wide but unallocated: the next read sizes it again instead of trusting its old width
    assert runner(np.zeros((1, 16, 32), np.uint8)).shape == (1, 8, 3)
    assert runner(np.zeros((1, 16, 64), np.uint8)).shape == (1, 16, 3)


def test_a_read_waiting_for_an_interpreter_that_never_comes_back_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recognizer, "LANE_WAIT_SECONDS", 0.05)
    runner = SequenceRunner([FakeInterpreter()], 16, (32, 64))
    runner._free.get()  # held by a read that never ended
    with pytest.raises(RuntimeError, match=r"no recognizer interpreter came free in 0.05 s \(all 1 held that long"):
        runner(np.zeros((1, 16, 32), np.uint8))


def test_probabilities_that_are_not_numbers_are_an_error_not_an_empty_reading() -> None:
    """Before, NaN decoded as blanks: every word read as "" with score 0, so a recognizer gone wrong looked
    like nothing written in view, for ever. Now the daemon counts a failed frame, gives up and says why."""
    interpreter = FakeInterpreter()
    runner = SequenceRunner([interpreter], 16, (32, 64))
    interpreter.broken = True
    with pytest.raises(ModelLoadError, match="not numbers"):
        runner(np.zeros((1, 16, 32), np.uint8))
    interpreter.broken = False
    assert runner(np.zeros((1, 16, 32), np.uint8)).shape == (1, 8, 3)  # the lane was given back
