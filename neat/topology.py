"""The game's fixed structure: players, player graph and ``S``, as one host-side value object.

:class:`Topology` owns everything about *who plays with whom* (docs/spec.md, "Objects"):
the partition of tensors into players, the graph ``W`` and ``S = (I + μL)^{-1}``.
It is built once, restricts itself to the players of the active tensors (SPEC v2
sub-game, cached per pattern), grows when tensors join (:meth:`Topology.grown`, SPEC
"Growing the game") and hands the step its :class:`GameTables`: small
index and weight arrays whose size grows with the number of tensors and players
(and with the non-negligible entries of ``S``), never as tensors × players.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from neat.players import PlayerGraph, Players

#: Entries of ``S`` below this are dropped from its gather table. ``S`` is row-stochastic
#: (entries in [0, 1], rows summing to 1), so a dropped entry changes ``S x`` by less than
#: ``2^-60 · max|x|`` per term: below float64 rounding of the result.
NEGLIGIBLE = 2.0**-60

#: Games with more players build ``S``'s table from a sparse factorisation instead of the dense inverse.
DENSE_LIMIT = 2048
_BLOCK = 256


class GameTables(NamedTuple):
    """The arrays the per-player math needs (SPEC steps 3, 5, 7), on the step's device.

    * ``owner``: ``(K,)`` int, ``P(k)``;
    * ``members``, ``member_mask``: ``(n, w)`` tensor indices of each player, padded (mask 0, else 1,
      in the statistics dtype);
    * ``neighbours``, ``weights``: ``(n, s)`` player indices ``j`` and ``S_ij`` of row ``i`` of ``S``
      (weight 0 in the padding), in the statistics dtype.
    """

    owner: Any
    members: Any
    member_mask: Any
    neighbours: Any
    weights: Any


@dataclass(frozen=True, eq=False)
class Topology:
    """Players, graph and coupling ``μ`` of one game; validated, immutable, host-side (NumPy)."""

    players: Players
    graph: PlayerGraph
    mu: float
    _restricted: dict = field(default_factory=dict, repr=False)
    _tables: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, num_tensors: int, players=None, graph=None, *, mu: float) -> Topology:
        """From a players spec (lists of tensor indices, or ``None``: one per tensor) and a graph
        spec (``n × n`` weights, ``(i, j, w)`` edges, or ``None``: a chain)."""
        player_map = Players.from_spec(players, num_tensors)
        return cls(player_map, PlayerGraph.from_spec(graph, player_map.num_players), float(mu))

    def grown(self, player_of_new=None, graph=None, *, num_new: int | None = None) -> Topology:
        """The game after tensors join (SPEC "Growing the game"), a new topology (``S`` is computed
        once for it, when first needed; this one is unchanged). ``player_of_new``: each joining
        tensor's player in the grown game (:meth:`Players.grown`), or ``None`` with ``num_new``: one
        new player per joining tensor. ``graph``: the new players' edges (:meth:`PlayerGraph.grown`;
        ``None``: chained after the last player). Joining tensors take the indices after the existing ones."""
        if player_of_new is None:
            if num_new is None:
                raise ValueError("Topology.grown needs player_of_new or num_new")
            player_of_new = range(self.num_players, self.num_players + num_new)
        players = self.players.grown(player_of_new)
        return Topology(players, self.graph.grown(players.num_players - self.num_players, graph), self.mu)

    @property
    def num_tensors(self) -> int:
        return self.players.num_tensors

    @property
    def num_players(self) -> int:
        return self.players.num_players

    def smoothing(self) -> np.ndarray:
        """``S = (I + μ L)^{-1}`` in float64 (dense; computed once per topology)."""
        if "smoothing" not in self._tables:
            self._tables["smoothing"] = self.graph.smoothing(self.mu)
        return self._tables["smoothing"]

    def restrict(self, active: tuple[int, ...]) -> tuple[Topology, Restriction]:
        """The sub-game of the players owning the ``active`` tensors (SPEC v2, "One step"):
        its topology (tensors renumbered ``0..len(active)-1``) and the :class:`Restriction`
        that maps its tensors and players to this game's. Computed once per pattern."""
        cached = self._restricted.get(active)
        if cached is None:
            owner = self.players.owner
            taking_part = sorted({owner[k] for k in active})
            position = {player: i for i, player in enumerate(taking_part)}
            groups: list[list[int]] = [[] for _ in taking_part]
            for local, k in enumerate(active):
                groups[position[owner[k]]].append(local)
            sub_graph = PlayerGraph(self.graph.weights[np.ix_(taking_part, taking_part)])
            cached = (
                Topology(Players.from_spec(groups, len(active)), sub_graph, self.mu),
                Restriction.of(active, taking_part, self.num_tensors, self.num_players),
            )
            self._restricted[active] = cached
        return cached

    def host_tables(self) -> GameTables:
        """:class:`GameTables` as float64 / int64 NumPy arrays."""
        if "host" not in self._tables:
            members, member_mask = _padded(self.players.groups)
            neighbours, weights = self._smoothing_rows()
            self._tables["host"] = GameTables(
                np.asarray(self.players.owner, dtype=np.int64),
                members,
                member_mask.astype(np.float64),
                neighbours,
                weights,
            )
        return self._tables["host"]

    def _smoothing_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The entries of ``S`` above :data:`NEGLIGIBLE`, as padded ``(n, s)`` column indices and
        weights. Up to :data:`DENSE_LIMIT` players from the dense inverse; beyond, from a sparse LU
        factorisation of ``I + μL`` (SciPy), solved for blocks of unit vectors (``S`` is symmetric,
        so its columns are its rows): time and memory grow with the non-negligible entries, not n²."""
        n = self.num_players
        if n <= DENSE_LIMIT or self.mu == 0:
            return _truncated_rows(self.smoothing())
        from scipy.sparse import csc_matrix, identity
        from scipy.sparse.linalg import splu

        factor = splu(csc_matrix(identity(n) + self.mu * csc_matrix(self.graph.laplacian())))
        rows: list = []
        for start in range(0, n, _BLOCK):
            unit = np.zeros((n, min(_BLOCK, n - start)))
            unit[np.arange(start, start + unit.shape[1]), np.arange(unit.shape[1])] = 1.0
            rows.extend(factor.solve(unit).T)
        return _truncated_rows(rows)

    def tables(self, xp, device, stats_dtype) -> GameTables:
        """:class:`GameTables` in namespace ``xp`` on ``device`` (cached per namespace, device, dtype;
        not for ``device=None``, the device of a traced array under ``jax.jit``: the arrays made there
        belong to that trace)."""
        key = (id(xp), str(device), str(stats_dtype))
        if key in self._tables:
            return self._tables[key]
        host = self.host_tables()
        index = _index_dtype(xp)
        tables = GameTables(
            owner=xp.asarray(host.owner, dtype=index, device=device),
            members=xp.asarray(host.members, dtype=index, device=device),
            member_mask=xp.asarray(host.member_mask, dtype=stats_dtype, device=device),
            neighbours=xp.asarray(host.neighbours, dtype=index, device=device),
            weights=xp.asarray(host.weights, dtype=stats_dtype, device=device),
        )
        if device is not None:
            self._tables[key] = tables
        return tables


class RestrictionArrays(NamedTuple):
    """Index arrays of a :class:`Restriction`: ``tensors``/``players`` gather the sub-game's entries
    from the full game's; ``*_position`` (index into the sub-game, 0 where absent) and ``*_mask``
    scatter them back."""

    tensors: Any
    players: Any
    tensor_position: Any
    tensor_mask: Any
    player_position: Any
    player_mask: Any


@dataclass(frozen=True, eq=False)
class Restriction:
    """How a sub-game's tensors and players sit in the full game (host arrays)."""

    host: RestrictionArrays
    _on_device: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, tensors, players, num_tensors: int, num_players: int) -> Restriction:
        def position(chosen, size):
            where = np.zeros(size, dtype=np.int64)
            mask = np.zeros(size, dtype=bool)
            where[list(chosen)] = np.arange(len(chosen))
            mask[list(chosen)] = True
            return where, mask

        return cls(
            RestrictionArrays(
                np.asarray(tensors, dtype=np.int64),
                np.asarray(players, dtype=np.int64),
                *position(tensors, num_tensors),
                *position(players, num_players),
            )
        )

    def arrays(self, xp, device) -> RestrictionArrays:
        """The index arrays in namespace ``xp`` on ``device`` (cached, except for ``device=None``:
        see :meth:`Topology.tables`)."""
        key = (id(xp), str(device))
        if key in self._on_device:
            return self._on_device[key]
        index = _index_dtype(xp)
        arrays = RestrictionArrays(
            *(xp.asarray(a, dtype=xp.bool if a.dtype == bool else index, device=device) for a in self.host)
        )
        if device is not None:
            self._on_device[key] = arrays
        return arrays


def _index_dtype(xp):
    """The namespace's default index dtype (int64; int32 in JAX without x64 mode, which has no int64)."""
    return xp.__array_namespace_info__().default_dtypes()["indexing"]


def _truncated_rows(rows) -> tuple[np.ndarray, np.ndarray]:
    """Padded column indices and weights of the entries above :data:`NEGLIGIBLE` of each row."""
    kept = [np.flatnonzero(row > NEGLIGIBLE) for row in rows]
    neighbours, mask = _padded(kept)
    weights = np.zeros(mask.shape)
    weights[mask] = np.concatenate([row[columns] for row, columns in zip(rows, kept)])
    return neighbours, weights


def _padded(rows) -> tuple[np.ndarray, np.ndarray]:
    """Ragged integer rows as a zero-padded ``(len(rows), longest)`` matrix and its mask."""
    width = max(len(row) for row in rows)
    mask = np.arange(width)[None, :] < np.asarray([len(row) for row in rows])[:, None]
    matrix = np.zeros(mask.shape, dtype=np.int64)
    matrix[mask] = np.concatenate([np.asarray(row, dtype=np.int64) for row in rows])
    return matrix, mask
