"""The line's noise floor, tracked per frame by minimum statistics (#18).

A fixed level gate (-50 dBFS) is wrong both ways on a phone line: a quiet caller's
speech sits under it, and a noisy line sits over it, so the VAD's "speech" on line
noise passes and turns never end. Speech, unlike noise, keeps dipping between
syllables and words; so the quietest 20 ms frame of the last two seconds is close to
the noise alone, whatever is being said. A frame counts as loud enough when it is
``margin_db`` over that floor (and over an absolute ``lowest_dbfs``, so digital
silence does not make a whisper of hiss into speech).

Per frame: one comparison and one store; every ``block`` frames, a min over a few
floats. Energies are kept as mean squares in int16 units: no logs or roots per frame.
"""

from __future__ import annotations

__all__ = ["NoiseFloor"]


def _mean_square(dbfs: float) -> float:
    return (32768.0 * 10 ** (dbfs / 20)) ** 2


class NoiseFloor:
    """Minimum of the frame energies over the last ``blocks`` x ``block`` frames."""

    __slots__ = ("_block", "_block_min", "_count", "_factor", "_floor", "_lowest", "_minima")

    def __init__(
        self,
        margin_db: float = 6.0,
        lowest_dbfs: float = -62.0,
        block: int = 10,
        blocks: int = 10,
    ) -> None:
        if block <= 0 or blocks <= 0:
            raise ValueError(f"block and blocks must be positive, got {block} and {blocks}")
        self._factor = 10 ** (margin_db / 10)
        self._lowest = _mean_square(lowest_dbfs)
        self._block = block
        self._minima = [float("inf")] * blocks
        self._block_min = float("inf")
        self._count = 0
        self._floor = float("inf")

    @property
    def floor_mean_square(self) -> float:
        """The floor estimate (inf until the first block is complete)."""
        return min(self._floor, self._block_min)

    def threshold(self, mean_square: float) -> float:
        """Take one frame's mean square; return the mean square speech must exceed."""
        if mean_square < self._block_min:
            self._block_min = mean_square
        self._count += 1
        if self._count % self._block == 0:
            minima = self._minima
            minima[(self._count // self._block) % len(minima)] = self._block_min
            self._block_min = float("inf")
            self._floor = min(minima)
        floor = self._floor if self._floor < self._block_min else self._block_min
        gate = floor * self._factor
        return gate if gate > self._lowest else self._lowest
