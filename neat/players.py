"""Players and the player graph (docs/spec.md, "Objects").

A :class:`Players` is a partition of the tensor indices ``0..K-1`` into ``n``
non-empty players; a :class:`PlayerGraph` is the symmetric, non-negative
``n × n`` weight matrix ``W`` with zero diagonal that couples them. Both are
validated on construction and are plain host-side (NumPy) objects: they are
fixed before the first step and never change inside one. Tensors and players that join
later (SPEC "Growing the game") make new objects: :meth:`Players.grown`,
:meth:`PlayerGraph.grown`.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


def _index(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"Invalid {what}: {value!r} (expected an integer)")
    return int(value)


@dataclass(frozen=True)
class Players:
    """A partition of tensor indices into players: ``groups[i]`` lists player ``i``'s tensors."""

    groups: tuple[tuple[int, ...], ...]
    num_tensors: int

    @classmethod
    def from_spec(cls, spec, num_tensors: int) -> Players:
        """Build from a list of lists of tensor indices, or ``None`` for one player per tensor."""
        if spec is None:
            return cls(tuple((k,) for k in range(num_tensors)), num_tensors)
        if isinstance(spec, Players):
            spec = spec.groups
        try:
            groups = tuple(tuple(_index(k, "tensor index in players") for k in group) for group in spec)
        except TypeError:
            raise ValueError(f"Invalid players: {spec!r} (expected a list of lists of tensor indices)") from None
        return cls(groups, num_tensors)

    def __post_init__(self):
        if not self.groups:
            raise ValueError("Invalid players: no player given (need at least one)")
        seen: dict[int, int] = {}
        for player, group in enumerate(self.groups):
            if not group:
                raise ValueError(f"Invalid players: player {player} is empty")
            for k in group:
                if not 0 <= k < self.num_tensors:
                    raise ValueError(
                        f"Invalid players: tensor index {k} in player {player} is out of range "
                        f"for {self.num_tensors} tensors"
                    )
                if k in seen:
                    raise ValueError(
                        f"Invalid players: tensor {k} belongs to both player {seen[k]} and player {player}"
                    )
                seen[k] = player
        missing = sorted(set(range(self.num_tensors)) - set(seen))
        if missing:
            raise ValueError(f"Invalid players: tensors {missing} belong to no player")

    @property
    def num_players(self) -> int:
        return len(self.groups)

    def grown(self, player_of_new) -> Players:
        """The partition after tensors join (SPEC "Growing the game"): tensor ``K + i`` (``K`` the
        tensors so far) belongs to player ``player_of_new[i]`` of the grown game, an existing player
        (``< n``) or a new one; the new players are numbered ``n, n+1, …`` without gaps. The
        existing tensors keep their players and indices."""
        try:
            owners = [_index(p, "player of a joining tensor") for p in player_of_new]
        except TypeError:
            raise ValueError(
                f"Invalid growth: {player_of_new!r} (expected each joining tensor's player index)"
            ) from None
        if not owners:
            raise ValueError("Invalid growth: no tensor joins")
        n = self.num_players
        if min(owners) < 0:
            raise ValueError(f"Invalid growth: player {min(owners)} of a joining tensor is negative")
        missing = sorted(set(range(n, max(owners) + 1)) - set(owners))
        if missing:
            raise ValueError(
                f"Invalid growth: new players must be numbered {n}, {n + 1}, … without gaps; "
                f"players {missing} get no tensor"
            )
        groups = [list(group) for group in self.groups] + [[] for _ in range(max(owners) + 1 - n)]
        for i, player in enumerate(owners):
            groups[player].append(self.num_tensors + i)
        return Players(tuple(map(tuple, groups)), self.num_tensors + len(owners))

    @property
    def owner(self) -> tuple[int, ...]:
        """``owner[k] = P(k)``, the player owning tensor ``k``."""
        result = [0] * self.num_tensors
        for player, group in enumerate(self.groups):
            for k in group:
                result[k] = player
        return tuple(result)

    def membership(self) -> np.ndarray:
        """The ``K × n`` one-hot matrix ``M[k, P(k)] = 1`` (float64)."""
        matrix = np.zeros((self.num_tensors, self.num_players))
        matrix[np.arange(self.num_tensors), self.owner] = 1.0
        return matrix


@dataclass(frozen=True, eq=False)
class PlayerGraph:
    """The player graph's weight matrix ``W`` (float64, validated)."""

    weights: np.ndarray

    @classmethod
    def from_spec(cls, spec, num_players: int) -> PlayerGraph:
        """Build from an ``n × n`` matrix, a list of ``(i, j, weight)`` edges, or ``None`` (chain)."""
        if spec is None:
            return cls.chain(num_players)
        if isinstance(spec, PlayerGraph):
            spec = spec.weights
        if _looks_like_edges(spec, num_players):
            return cls.from_edges(spec, num_players)
        try:
            weights = np.array(spec, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"Invalid graph: {spec!r} (expected an n×n weight matrix, a list of (i, j, weight) edges or None)"
            ) from None
        if weights.shape != (num_players, num_players):
            raise ValueError(
                f"Invalid graph: weight matrix has shape {weights.shape}, expected "
                f"({num_players}, {num_players}) for {num_players} players"
            )
        return cls(weights)

    @classmethod
    def chain(cls, num_players: int) -> PlayerGraph:
        """The default graph: ``W[i, i+1] = W[i+1, i] = 1``."""
        return cls.from_edges([(i, i + 1, 1.0) for i in range(num_players - 1)], num_players)

    @classmethod
    def from_edges(cls, edges, num_players: int) -> PlayerGraph:
        """Symmetric weights from undirected ``(i, j, weight)`` edges; a repeated edge adds up."""
        weights = np.zeros((num_players, num_players))
        for edge in edges:
            i, j, weight = edge
            i, j = _index(i, "graph edge endpoint"), _index(j, "graph edge endpoint")
            for end in (i, j):
                if not 0 <= end < num_players:
                    raise ValueError(
                        f"Invalid graph: edge {tuple(edge)!r} names player {end}, but there are {num_players} players"
                    )
            if i == j:
                raise ValueError(f"Invalid graph: edge {tuple(edge)!r} is a self-loop")
            weights[i, j] += weight
            weights[j, i] += weight
        return cls(weights)

    def __post_init__(self):
        w = self.weights
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"Invalid graph: weight matrix must be square, got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("Invalid graph: weights must be finite")
        if np.any(w < 0):
            raise ValueError("Invalid graph: weights must be non-negative")
        if np.any(np.diag(w) != 0):
            raise ValueError("Invalid graph: the diagonal (self-loops) must be zero")
        if not np.array_equal(w, w.T):
            raise ValueError("Invalid graph: weight matrix must be symmetric")

    @property
    def num_players(self) -> int:
        return self.weights.shape[0]

    def grown(self, num_new: int, spec=None) -> PlayerGraph:
        """The graph after ``num_new`` players join (SPEC "Growing the game"): ``spec`` ``None``
        chains them after the last player (the default graph's rule: ``(n−1, n), (n, n+1), …``);
        ``(i, j, weight)`` edges in the grown numbering, each naming a new player, are added (``[]``:
        the new players stay unconnected); an ``(n+p) × (n+p)`` matrix is the grown graph. The
        weights between the players already playing never change."""
        n, size = self.num_players, self.num_players + num_new
        if spec is None:
            spec = [(i, i + 1, 1.0) for i in range(n - 1, size - 1)]
        added = PlayerGraph.from_spec(spec, size)
        if _looks_like_edges(spec, size):
            weights = added.weights.copy()
            weights[:n, :n] += self.weights
            if np.any(added.weights[:n, :n]):
                raise ValueError(
                    "Invalid growth of the graph: an edge joins two players already playing; "
                    "edges given on growth must name a new player (the existing graph is kept)"
                )
            return PlayerGraph(weights)
        if not np.array_equal(added.weights[:n, :n], self.weights):
            raise ValueError(
                "Invalid growth of the graph: the grown weight matrix changes the weights between the "
                f"{n} players already playing; its top-left {n}×{n} block must be the current graph"
            )
        return added

    def laplacian(self) -> np.ndarray:
        """``L = D − W`` with ``D = diag(W·1)``."""
        return np.diag(self.weights.sum(axis=1)) - self.weights

    def smoothing(self, mu: float) -> np.ndarray:
        """``S = (I + μ L)^{-1}`` in float64; symmetric, non-negative, rows summing to 1."""
        identity = np.eye(self.num_players)
        return np.linalg.solve(identity + mu * self.laplacian(), identity)


def _looks_like_edges(spec, num_players: int) -> bool:
    """Tuples, or rows of three that do not form an ``n × n`` matrix, are edges."""
    if isinstance(spec, np.ndarray) or not isinstance(spec, (list, tuple)):
        return False
    if not spec:
        return True
    if all(isinstance(row, tuple) for row in spec):
        return True
    rows_of_three = all(isinstance(row, (list, tuple)) and len(row) == 3 for row in spec)
    square = len(spec) == num_players and all(
        isinstance(row, (list, tuple)) and len(row) == num_players for row in spec
    )
    return rows_of_three and not square
