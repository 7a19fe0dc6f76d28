"""Domain errors: every failure the training domain can report, each with a message a user can act on."""

from __future__ import annotations


class TrainingError(Exception):
    """Base of every training-domain error; `field` names the input to fix when one is to blame."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidDataset(TrainingError):
    """The data cannot be trained on: ragged, non-numeric, non-finite, empty, too large or mislabelled."""


class IncompatibleData(TrainingError):
    """The data is valid but does not suit the model (e.g. a 3-class target for logistic regression)."""


class InvalidConfig(TrainingError):
    """A training configuration the domain cannot honour (e.g. more folds than training rows)."""


class Diverged(TrainingError):
    """The loss or the weights became non-finite: the learning rate is too large for this problem."""


class Cancelled(TrainingError):
    """The caller asked the job to stop; raised at the next epoch boundary."""

    def __init__(self, epoch: int) -> None:
        super().__init__(f"cancelled at epoch {epoch}")
        self.epoch = epoch
