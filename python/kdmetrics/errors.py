"""The exceptions kdmetrics raises for bad input.

Every class is a subclass of :class:`KdMetricsError`, itself a subclass of
``ValueError``, so ``except ValueError`` keeps working. Each message starts
with the public function's name (``"nll: labels[17] = 5 is out of range
[0, 5)"``); the structured parts are also attributes.

The classes are defined here, once: the Rust kernels raise these very classes
(``rust/python/errors.rs`` maps each kernel error to one of them), and the
Python-side checks in ``kdmetrics._validation`` raise them too. They are plain
Python classes rather than classes declared by the extension so that they take
keyword attributes, pickle with them, and type-check without stubs.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlignmentError",
    "InvalidArgumentError",
    "KdMetricsError",
    "NonFiniteError",
    "OutOfRangeError",
    "ShapeError",
]


class KdMetricsError(ValueError):
    """Base class: the input was refused (a ``ValueError``).

    Anything else escaping a kdmetrics function (``TypeError`` aside) is a bug.
    """

    #: Names of the structured attributes, in the constructor's order.
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str = "", *values: Any, **named: Any) -> None:
        super().__init__(message)
        if len(values) > len(self.fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(self.fields)} values")
        given = dict(zip(self.fields, values, strict=False))
        for key, v in named.items():
            if key not in self.fields or key in given:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated {key!r}")
            given[key] = v
        for key in self.fields:
            setattr(self, key, given.get(key))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, key) for key in self.fields)

    def with_prefix(self, func: str) -> KdMetricsError:
        """The same error (class and attributes), its message prefixed with
        ``"func: "``: how the public function's name gets into kernel errors."""
        return type(self)(f"{func}: {self.message}", *self._values())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, *self._values()))


class ShapeError(KdMetricsError):
    """An array has the wrong number of dimensions, rows or columns, is empty,
    or two arrays that must describe the same examples differ in length."""


class NonFiniteError(KdMetricsError):
    """NaN or +-inf where only finite values make sense: ``row``, ``col``
    (``col`` is None for a 1-D input)."""

    fields = ("row", "col")
    row: int | None
    col: int | None


class OutOfRangeError(KdMetricsError):
    """A class index (label, prediction, tier code, resample index) outside
    ``[0, bound)``: ``value`` found at position ``index``."""

    fields = ("index", "value", "bound")
    index: int | None
    value: int | None
    bound: int | None


class AlignmentError(KdMetricsError):
    """Inputs that must describe the same examples or classes do not: different
    ids, labels or class counts across models or files."""


class InvalidArgumentError(KdMetricsError):
    """Any other refused argument: a wrong type (``True`` for a number), a
    value outside its domain, a size too large to allocate, an unknown name."""
