"""Compile an OpenSpiel game once into flat arrays (and cache them on disk).

Layout of a :class:`CompiledGame` (N histories, I information sets, A = ``num_distinct_actions``):

* histories are numbered in breadth-first order, so they are sorted by depth and the children of a
  node are contiguous and ordered like their parents; ``level_ptr[d]:level_ptr[d+1]`` is depth ``d``;
* ``parent[N]`` (-1 at the root), ``action[N]`` (action leading to the node, -1 at the root),
  ``actor[N]`` (player to move, ``CHANCE`` = -1 at chance nodes, ``TERMINAL`` = -2 at terminals),
  ``infoset[N]`` (-1 where nobody decides), ``chance_prob[N]`` (probability of the edge into the node
  when its parent is a chance node, 1 otherwise), ``returns[N, n]`` (0 except at terminals);
* information sets are sorted by player: player ``p`` owns ``player_ptr[p]:player_ptr[p+1]``;
  ``legal[I, A]`` is the legal-action mask (columns are OpenSpiel action ids, as in OpenSpiel's
  ``TabularPolicy``), ``keys[I]`` the information-state strings, ``parent_seq[I]`` the player's own
  previous sequence ``I' * A + a`` (-1 for none: the sequence-form parent link), ``own_depth[I]`` the
  number of the player's earlier decisions.

Perfect recall is checked while compiling (every history of an information set has the same own
previous sequence); simultaneous-move games go through ``pyspiel.convert_to_turn_based``.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.errors import ConfigError, ParsimonError

__all__ = [
    "CompiledGame",
    "compile_game",
    "estimate_histories",
    "load_game",
    "MAX_NODES",
    "positive_int",
    "NotPerfectRecall",
    "UnknownGame",
    "ENGINE_VERSION",
    "CHANCE",
    "TERMINAL",
]

ENGINE_VERSION = 1
CHANCE = -1
TERMINAL = -2


class UnknownGame(ConfigError):
    """The game string does not name an OpenSpiel game, or its parameters are wrong."""


class NotPerfectRecall(ParsimonError, ValueError):
    """The game does not have perfect recall, so tabular CFR and the sequence form do not apply."""


def load_game(game: Any):
    """Return a sequential ``pyspiel.Game`` for a game string or game object.

    Simultaneous-move games are wrapped with ``pyspiel.convert_to_turn_based``.
    """
    try:
        import pyspiel
    except ImportError as exc:
        from parsimon.errors import DependencyNotInstalled

        raise DependencyNotInstalled("open_spiel", "games", "the game engine") from exc

    if isinstance(game, str):
        name = game.split("(", 1)[0].strip()
        registered = {g.short_name for g in pyspiel.registered_games()}
        if name not in registered:
            near = sorted(n for n in registered if name[:4] and n.startswith(name[:4]))[:8]
            raise UnknownGame(
                f"unknown OpenSpiel game {name!r} (argument `game`); examples of registered games: "
                f"kuhn_poker, leduc_poker, liars_dice, goofspiel"
                + (f"; similar names: {', '.join(near)}" if near else "")
            )
        try:
            game = pyspiel.load_game(game)
        except Exception as exc:  # pyspiel raises a plain RuntimeError / SpielError
            raise UnknownGame(f"cannot load game {game!r}: {exc}") from exc
    if not hasattr(game, "new_initial_state") or not hasattr(game, "get_type"):
        raise ConfigError(f"`game` must be an OpenSpiel game string or pyspiel.Game, got {type(game).__name__}")
    gtype = game.get_type()
    if gtype.dynamics == pyspiel.GameType.Dynamics.SIMULTANEOUS:
        game = pyspiel.convert_to_turn_based(game)
        gtype = game.get_type()
    if gtype.dynamics != pyspiel.GameType.Dynamics.SEQUENTIAL:
        raise ConfigError(f"game {game} has dynamics {gtype.dynamics}; only sequential games are supported")
    if not gtype.provides_information_state_string:
        raise NotPerfectRecall(
            f"game {game} provides no information-state string, so perfect recall cannot be established"
        )
    if gtype.chance_mode == pyspiel.GameType.ChanceMode.SAMPLED_STOCHASTIC:
        raise ConfigError(f"game {game} has sampled chance; explicit chance outcomes are needed")
    return game


@dataclass
class CompiledGame:
    game_string: str
    num_players: int
    num_actions: int
    parent: np.ndarray
    action: np.ndarray
    actor: np.ndarray
    infoset: np.ndarray
    chance_prob: np.ndarray
    returns: np.ndarray
    level_ptr: np.ndarray
    infoset_player: np.ndarray
    player_ptr: np.ndarray
    legal: np.ndarray
    keys: np.ndarray
    parent_seq: np.ndarray
    own_depth: np.ndarray
    compile_seconds: float = 0.0
    from_cache: bool = False
    _game: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ sizes
    @property
    def num_nodes(self) -> int:
        return int(self.parent.shape[0])

    @property
    def num_infosets(self) -> int:
        return int(self.legal.shape[0])

    @property
    def num_levels(self) -> int:
        return int(self.level_ptr.shape[0] - 1)

    def infosets_of(self, player: int) -> slice:
        return slice(int(self.player_ptr[player]), int(self.player_ptr[player + 1]))

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f).nbytes for f in _ARRAY_FIELDS))

    @property
    def game(self):
        """The (sequential) ``pyspiel.Game`` this was compiled from (loaded on demand)."""
        if self._game is None:
            import pyspiel

            self._game = pyspiel.load_game(self.game_string)
        return self._game

    def summary(self) -> dict:
        return {
            "game": self.game_string,
            "players": self.num_players,
            "histories": self.num_nodes,
            "terminals": int((self.actor == TERMINAL).sum()),
            "infosets": self.num_infosets,
            "sequences": int(self.legal.sum()),
            "depth": self.num_levels,
            "memory_bytes": self.nbytes,
            "compile_seconds": round(self.compile_seconds, 4),
            "from_cache": self.from_cache,
        }

    def uniform_policy(self) -> np.ndarray:
        m = self.legal.astype(np.float64)
        return m / m.sum(axis=1, keepdims=True)

    def key_index(self) -> dict[str, int]:
        return {str(k): i for i, k in enumerate(self.keys)}


_ARRAY_FIELDS = (
    "parent", "action", "actor", "infoset", "chance_prob", "returns", "level_ptr",
    "infoset_player", "player_ptr", "legal", "keys", "parent_seq", "own_depth",
)


def _cache_path(game_string: str) -> Path:
    from parsimon.paths import home

    h = hashlib.sha1(f"{game_string}|v{ENGINE_VERSION}".encode()).hexdigest()[:20]
    return home() / "games_cache" / f"{h}.npz"


#: Default cap on a game's histories. The compiler holds every history of one depth as an OpenSpiel state
#: (about 1 kB each) and the arrays take about 70 bytes per history: 3M histories stay within a few GB.
#: 3-player Leduc, the largest game of the report, has 1.8M.
MAX_NODES = 3_000_000
SIZE_PROBES = 256


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (not a bool), else a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be a positive integer, got {value!r}")
    return value


def estimate_histories(game: Any, *, probes: int = SIZE_PROBES, seed: int = 0) -> float:
    """Knuth's estimate of the number of histories of ``game`` (a sequential ``pyspiel.Game``): the mean over
    ``probes`` random root-to-terminal paths of ``1 + b_1 + b_1 b_2 + ...`` (``b_i`` the branching factors
    met). Unbiased; cheap (milliseconds), so a game too large to compile is refused before it is expanded."""
    import random

    rng = random.Random(seed)
    total = 0.0
    for _ in range(probes):
        state, width, count = game.new_initial_state(), 1.0, 1.0
        while not state.is_terminal():
            if state.is_chance_node():
                actions = [a for a, p in state.chance_outcomes() if p > 0]
            else:
                actions = state.legal_actions()
            if not actions:
                break
            width *= len(actions)
            count += width
            state = state.child(rng.choice(actions))
        total += count
    return total / probes


def _as_compiled(game: Any) -> CompiledGame | None:
    """The compiled game inside ``game`` (a CompiledGame, or a Tree holding one), else None."""
    if isinstance(game, CompiledGame):
        return game
    cg = getattr(game, "cg", None)
    return cg if isinstance(cg, CompiledGame) else None


def compile_game(game: Any, *, cache: bool = True, progress: bool = False,
                 max_nodes: int = MAX_NODES) -> CompiledGame:
    """Compile ``game`` (OpenSpiel string or object) to a :class:`CompiledGame`.

    A :class:`CompiledGame`, or a :class:`~parsimon.games.backend.Tree` holding one, is returned as it is.
    With ``cache=True`` the arrays are read from / written to ``$PARSIMON_HOME/games_cache`` (npz keyed
    by the game string and :data:`ENGINE_VERSION`). ``compile_seconds`` is the traversal time (or the
    load time for a cache hit). A game whose estimated number of histories (:func:`estimate_histories`)
    exceeds ``max_nodes`` is refused before it is expanded, and the traversal stops at ``max_nodes``
    histories (ConfigError naming the limit in both cases).
    """
    compiled = _as_compiled(game)
    if compiled is not None:
        return compiled
    positive_int("max_nodes", max_nodes)
    g = load_game(game)
    gs = str(g)
    path = _cache_path(gs)
    if cache and path.exists():
        t0 = time.perf_counter()
        try:
            with np.load(path, allow_pickle=False) as z:
                arrs = {k: z[k] for k in _ARRAY_FIELDS}
                meta = z["meta"]
            if str(meta[0]) == gs:
                cg = CompiledGame(
                    game_string=gs, num_players=int(meta[1]), num_actions=int(meta[2]), **arrs,
                    compile_seconds=time.perf_counter() - t0, from_cache=True, _game=g,
                )
                return cg
        except Exception:  # a corrupt cache file is rebuilt below
            pass
    estimate = estimate_histories(g)
    if estimate > max_nodes:
        raise ConfigError(
            f"game {gs} has about {estimate:.3g} histories (estimated from {SIZE_PROBES} random paths), more than "
            f"the limit max_nodes={max_nodes:,} (`--max-nodes`); the compiler would need about "
            f"{estimate * 1e3 / 2**30:.3g} GB. Raise the limit to compile it anyway")
    cg = _traverse(g, progress=progress, max_nodes=max_nodes)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # concurrent writers
        meta = np.array([gs, str(cg.num_players), str(cg.num_actions)])
        np.savez(tmp, meta=meta, **{k: getattr(cg, k) for k in _ARRAY_FIELDS})
        tmp.replace(path)
    return cg


def _traverse(game, progress: bool = False, max_nodes: int = MAX_NODES) -> CompiledGame:
    t0 = time.perf_counter()
    n = game.num_players()
    A = game.num_distinct_actions()
    parent: list[int] = [-1]
    action: list[int] = [-1]
    actor: list[int] = []
    infoset: list[int] = []
    cprob: list[float] = [1.0]
    term_nodes: list[int] = []
    term_returns: list[list[float]] = []
    level_ptr = [0]
    key_to_id: dict[str, int] = {}
    is_player: list[int] = []
    is_legal: list[list[int]] = []
    is_parent_seq: list[int] = []
    is_keys: list[str] = []
    is_depth: list[int] = []

    # frontier entries: (state, node id, own last sequence per player as a tuple)
    frontier = [(game.new_initial_state(), 0, (-1,) * n)]
    next_id = 1
    while frontier:
        nxt = []
        for state, nid, seqs in frontier:
            if next_id > max_nodes:
                raise ConfigError(
                    f"game {game} has more than max_nodes={max_nodes:,} histories (`--max-nodes`); too large for "
                    "the tabular engine unless the limit is raised"
                )
            if state.is_terminal():
                actor.append(TERMINAL)
                infoset.append(-1)
                term_nodes.append(nid)
                term_returns.append(state.returns())
                continue
            if state.is_chance_node():
                actor.append(CHANCE)
                infoset.append(-1)
                for a, p in state.chance_outcomes():
                    if p <= 0:
                        continue
                    parent.append(nid)
                    action.append(a)
                    cprob.append(p)
                    nxt.append((state.child(a), next_id, seqs))
                    next_id += 1
                continue
            pl = state.current_player()
            if pl < 0:
                raise ConfigError(f"game {game}: unexpected node type (player {pl}) at {state}")
            key = state.information_state_string(pl)
            legal = state.legal_actions(pl)
            iid = key_to_id.get(key)
            if iid is None:
                iid = len(is_keys)
                key_to_id[key] = iid
                is_keys.append(key)
                is_player.append(pl)
                is_legal.append(legal)
                is_parent_seq.append(seqs[pl])
                is_depth.append(0 if seqs[pl] < 0 else is_depth[seqs[pl] // A] + 1)
            else:
                if is_parent_seq[iid] != seqs[pl]:
                    raise NotPerfectRecall(
                        f"game {game} does not have perfect recall: information state {key!r} of player "
                        f"{pl} is reached after different own action sequences"
                    )
                if is_legal[iid] != legal:
                    raise NotPerfectRecall(f"game {game}: legal actions differ within information state {key!r}")
            actor.append(pl)
            infoset.append(iid)
            for a in legal:
                parent.append(nid)
                action.append(a)
                cprob.append(1.0)
                s2 = list(seqs)
                s2[pl] = iid * A + a
                nxt.append((state.child(a), next_id, tuple(s2)))
                next_id += 1
        level_ptr.append(level_ptr[-1] + len(frontier))
        frontier = nxt
        if progress:
            print(f"  depth {len(level_ptr) - 2}: {len(frontier)} histories next", flush=True)

    N = len(parent)
    I = len(is_keys)
    infoset_arr = np.asarray(infoset, dtype=np.int64)
    is_player_arr = np.asarray(is_player, dtype=np.int64)
    # renumber infosets so that they are sorted by player (stable: discovery order within a player)
    order = np.argsort(is_player_arr, kind="stable")
    new_id = np.empty(I, dtype=np.int64)
    new_id[order] = np.arange(I)
    infoset_arr = np.where(infoset_arr >= 0, new_id[np.maximum(infoset_arr, 0)], -1)
    legal = np.zeros((I, A), dtype=bool)
    for old, acts in enumerate(is_legal):
        legal[new_id[old], acts] = True
    ps = np.asarray(is_parent_seq, dtype=np.int64)
    ps = np.where(ps >= 0, new_id[np.maximum(ps, 0) // A] * A + np.maximum(ps, 0) % A, -1)
    returns = np.zeros((N, n), dtype=np.float64)
    if term_nodes:
        returns[np.asarray(term_nodes)] = np.asarray(term_returns, dtype=np.float64)
    counts = np.bincount(is_player_arr, minlength=n)
    cg = CompiledGame(
        game_string=str(game),
        num_players=n,
        num_actions=A,
        parent=np.asarray(parent, dtype=np.int64),
        action=np.asarray(action, dtype=np.int64),
        actor=np.asarray(actor, dtype=np.int64),
        infoset=infoset_arr,
        chance_prob=np.asarray(cprob, dtype=np.float64),
        returns=returns,
        level_ptr=np.asarray(level_ptr, dtype=np.int64),
        infoset_player=is_player_arr[order],
        player_ptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        legal=legal,
        keys=np.asarray(is_keys, dtype=str)[order] if I else np.zeros(0, dtype="<U1"),
        parent_seq=ps[order],
        own_depth=np.asarray(is_depth, dtype=np.int64)[order],
        compile_seconds=time.perf_counter() - t0,
        _game=game,
    )
    return cg
