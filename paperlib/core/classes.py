"""Class lists: ImageNet class index <-> wnid <-> human name, and CIFAR-10 names.

One place answers "which class is 285?" and "what is the index of 'Egyptian cat'?"
for every part of the project (data loaders, black boxes, figures, widgets).

* The 1000 ImageNet **human names** come from torchvision's weights metadata
  (``ResNet50_Weights.IMAGENET1K_V1.meta["categories"]``), so they work without any
  data on disk and without a download.
* ImageNet **wnids** (``n02124075``) and the full synonym lists come from
  ``<data_root>/imagenet/LOC_synset_mapping.txt`` (one line per class in the standard
  sorted order, ``wnid name, synonym, ...``). The file is read lazily, only when a
  wnid or a synonym is needed, from the data root current at that moment
  (``$PAPERLIB_DATA``), and cached per file.
* CIFAR-10 has ten names and no wnids.

Example:
    >>> from paperlib.core.classes import imagenet_classes
    >>> c = imagenet_classes()
    >>> c.index("egyptian cat"), c.name(285)
    (285, 'Egyptian cat')
    >>> c.resolve("Egyptian cat", 4)
    tensor([285, 285, 285, 285])
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from . import paths
from .errors import DataNotFoundError, InputError, UnknownClassError

__all__ = [
    "ClassIndex",
    "ClassLike",
    "CIFAR10_NAMES",
    "SYNSET_FILENAME",
    "imagenet_classes",
    "cifar10_classes",
    "class_index",
    "synset_file",
    "PACKAGED_SYNSET_FILE",
]

#: A class given as an index, a human name (or synonym) or a wnid.
ClassLike = Union[int, str]

CIFAR10_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

SYNSET_FILENAME = "LOC_synset_mapping.txt"

_WNID_RE = re.compile(r"^n\d{8}$")
_SYNSET_HOWTO = (
    "Get LOC_synset_mapping.txt from the Kaggle ImageNet Object Localization Challenge "
    "(https://www.kaggle.com/c/imagenet-object-localization-challenge/data) and put it under "
    "$PAPERLIB_DATA/imagenet/ (set PAPERLIB_DATA, or `make DATA=/path`, to your data folder)."
)


#: The 1000-class WordNet synset list (wnid, name and synonyms per line, standard order) that ships
#: with the package, so that class names and synonyms ("tabby cat") work without any data folder.
PACKAGED_SYNSET_FILE = Path(__file__).resolve().parent / "resources" / SYNSET_FILENAME


def synset_file() -> Path:
    """The ImageNet synset mapping: ``<data_root>/imagenet/LOC_synset_mapping.txt`` when present,
    else the copy shipped with the package (:data:`PACKAGED_SYNSET_FILE`)."""
    local = paths.data_root() / "imagenet" / SYNSET_FILENAME
    return local if local.exists() or not PACKAGED_SYNSET_FILE.exists() else PACKAGED_SYNSET_FILE


def _norm(text: str) -> str:
    """Normalise a name for lookups: trimmed, lower case, inner whitespace collapsed."""
    return " ".join(text.split()).lower()


@dataclass(frozen=True)
class _Synsets:
    """Parsed content of a synset mapping file."""

    path: Path
    wnids: tuple[str, ...]
    full_names: tuple[str, ...]  # "tabby, tabby cat"
    synonyms: tuple[tuple[str, ...], ...]  # ("tabby", "tabby cat")
    wnid_to_index: dict[str, int]
    alias_to_indices: dict[str, tuple[int, ...]]  # normalised synonym / full name -> indices
    alias_display: dict[str, str]  # normalised -> as written in the file


@functools.lru_cache(maxsize=8)
def _read_synsets(path_str: str, mtime_ns: int, size: int, num_classes: int) -> _Synsets:
    """Parse a synset file (cached per path, modification time and size)."""
    path = Path(path_str)
    wnids: list[str] = []
    full: list[str] = []
    syns: list[tuple[str, ...]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            wnid, _, rest = line.partition(" ")
            if not _WNID_RE.match(wnid):
                raise DataNotFoundError(
                    f"Malformed synset file {path}: line {lineno} does not start with a wnid "
                    f"(expected 'nXXXXXXXX name, synonyms'): {line[:80]!r}. {_SYNSET_HOWTO}"
                )
            rest = rest.strip()
            wnids.append(wnid)
            full.append(rest)
            syns.append(tuple(s.strip() for s in rest.split(",") if s.strip()))
    if len(wnids) != num_classes:
        raise DataNotFoundError(f"Malformed synset file {path}: {len(wnids)} classes, expected {num_classes}. {_SYNSET_HOWTO}")
    if len(set(wnids)) != len(wnids) or list(wnids) != sorted(wnids):
        raise DataNotFoundError(
            f"Malformed synset file {path}: wnids must be unique and in the standard sorted order "
            f"(the order defines the class index). {_SYNSET_HOWTO}"
        )
    alias: dict[str, list[int]] = {}
    display: dict[str, str] = {}
    for i, (fn, ss) in enumerate(zip(full, syns)):
        for s in (fn, *ss):
            key = _norm(s)
            if not key:
                continue
            lst = alias.setdefault(key, [])
            if i not in lst:
                lst.append(i)
            display.setdefault(key, s)
    return _Synsets(
        path=path,
        wnids=tuple(wnids),
        full_names=tuple(full),
        synonyms=tuple(syns),
        wnid_to_index={w: i for i, w in enumerate(wnids)},
        alias_to_indices={k: tuple(v) for k, v in alias.items()},
        alias_display=display,
    )


def _match_tier(key: str, q: str, word: re.Pattern) -> Optional[int]:
    """How well ``key`` matches the query ``q`` (0 best), or None for no match."""
    if key == q:
        return 0  # exact
    if word.search(key):
        return 1  # whole word(s): "cat" -> "tiger cat"
    if key.startswith(q):
        return 2  # prefix: "gold" -> "goldfish"
    if any(w.startswith(q) for w in key.replace(",", " ").split()):
        return 3  # word prefix: "fish" -> "gold fish..."
    if q in key:
        return 4  # substring
    return None


class ClassIndex:
    """Maps class index <-> human name (<-> wnid) for one data set, both ways.

    Lookups are case-insensitive and ignore surrounding / repeated whitespace. Names are
    the primary human names; when a synset source is configured and its file is present
    (ImageNet), every synonym of the synset file is accepted too, as are wnids.

    Args:
        names: Primary human name of each class, in class-index order.
        dataset: Name of the data set, used in messages (``"imagenet"``, ``"cifar10"``).
        synset_source: Callable returning the path of a ``LOC_synset_mapping.txt``-style
            file, called each time wnids or synonyms are needed (so the current
            ``$PAPERLIB_DATA`` is honoured); ``None`` if the classes have no wnids.

    Attributes:
        names: Primary human names, ``names[i]`` is class ``i``.
        num_classes: Number of classes.
        dataset: Data set name.
    """

    def __init__(
        self,
        names: Sequence[str],
        dataset: str = "custom",
        synset_source: Optional[Callable[[], Path]] = None,
    ) -> None:
        self.names: list[str] = [str(n) for n in names]
        self.num_classes: int = len(self.names)
        self.dataset = dataset
        self._synset_source = synset_source
        # case-insensitive keys; names differing only in case (ImageNet: "Cardigan" the
        # corgi, 264, and "cardigan" the sweater, 474) are told apart by exact case.
        self._exact: dict[str, int] = {" ".join(n.split()): i for i, n in reversed(list(enumerate(self.names)))}
        self._name_to_indices: dict[str, list[int]] = {}
        for i, n in enumerate(self.names):
            self._name_to_indices.setdefault(_norm(n), []).append(i)

    # ------------------------------------------------------------------ synsets
    @property
    def has_wnids(self) -> bool:
        """Whether these classes have wnids at all (ImageNet yes, CIFAR-10 no)."""
        return self._synset_source is not None

    def _synsets(self) -> _Synsets:
        """The parsed synset file; raises DataNotFoundError if it is missing."""
        if self._synset_source is None:
            raise UnknownClassError(f"The {self.dataset} classes have no wnids (only ImageNet classes have them).")
        path = Path(self._synset_source())
        try:
            st = path.stat()
        except OSError:
            raise DataNotFoundError(
                f"ImageNet synset mapping not found: looked for {path}. It is needed for wnids "
                f"(class names work without it). {_SYNSET_HOWTO}"
            ) from None
        return _read_synsets(str(path.resolve()), st.st_mtime_ns, st.st_size, self.num_classes)

    def _synsets_or_none(self) -> Optional[_Synsets]:
        """The parsed synset file, or None if there is none (names-only lookups)."""
        if self._synset_source is None:
            return None
        try:
            return self._synsets()
        except DataNotFoundError:
            return None

    @property
    def wnids(self) -> list[str]:
        """All wnids in class-index order (reads the synset file; DataNotFoundError if missing)."""
        return list(self._synsets().wnids)

    def synonyms(self, i: int) -> list[str]:
        """All names of class ``i``: the synset file's synonyms if present, else ``[name(i)]``."""
        i = self._check_int(i)
        syn = self._synsets_or_none()
        out = [self.names[i]]
        if syn is not None:
            out += [s for s in syn.synonyms[i] if _norm(s) != _norm(self.names[i])]
        return out

    # ------------------------------------------------------------------ lookups
    def _check_int(self, i: Any) -> int:
        if isinstance(i, (bool, np.bool_)):
            raise UnknownClassError(f"Class index must be an int, got a bool ({i!r}).")
        if isinstance(i, torch.Tensor):
            if i.numel() != 1 or i.dtype.is_floating_point or i.dtype == torch.bool:
                raise UnknownClassError(f"Class index must be an integer scalar, got a tensor {tuple(i.shape)} {i.dtype}.")
            i = int(i.item())
        elif isinstance(i, np.integer):
            i = int(i)
        if not isinstance(i, int):
            raise UnknownClassError(f"Class index must be an int, got {type(i).__name__} {i!r}.")
        if not 0 <= i < self.num_classes:
            raise UnknownClassError(f"Class index {i} is out of range for {self.dataset} (0 to {self.num_classes - 1}).")
        return i

    def _all_display_names(self, syn: Optional[_Synsets]) -> dict[str, str]:
        """Normalised -> display form of every name and synonym (for suggestions)."""
        out = {_norm(n): n for n in self.names}
        if syn is not None:
            for k, v in syn.alias_display.items():
                out.setdefault(k, v)
        return out

    def suggestions(self, query: str, n: int = 5) -> list[str]:
        """The ``n`` names/synonyms closest to ``query`` (difflib), as written in the class list."""
        names = self._all_display_names(self._synsets_or_none())
        close = difflib.get_close_matches(_norm(query), list(names), n=n, cutoff=0.5)
        return [names[k] for k in close]

    def _unknown(self, query: str) -> UnknownClassError:
        sugg = self.suggestions(query, 5)
        hint = f" Closest matches: {', '.join(repr(s) for s in sugg)}." if sugg else " No close matches."
        how = f"{self.dataset}_classes()" if self.dataset in ("imagenet", "cifar10") else type(self).__name__
        return UnknownClassError(
            f"Unknown {self.dataset} class {query!r}.{hint} Use search() to find a class, "
            f"e.g. paperlib.classes.{how}.search({query!r})."
        )

    def index(self, cls: Any) -> int:
        """Class index of an int, a human name / synonym or a wnid.

        Args:
            cls: An int (range-checked; numpy ints and 1-element integer tensors work too),
                a name such as ``"Egyptian cat"`` or ``" egyptian CAT "`` or, for ImageNet,
                any synonym of the synset file or a wnid such as ``"n02124075"``. Numeric
                strings are names, not indices.

        Returns:
            The class index in ``[0, num_classes)``.

        Raises:
            UnknownClassError: Unknown name (the message lists the closest matches),
                ambiguous synonym, out-of-range index, or unsupported type.
            DataNotFoundError: A wnid was given but the synset file is missing.
        """
        if not isinstance(cls, str):
            return self._check_int(cls)
        key = _norm(cls)
        if key in self._name_to_indices:
            idx = self._name_to_indices[key]
            if len(idx) == 1:
                return idx[0]
            exact = self._exact.get(" ".join(cls.split()))
            if exact is not None:
                return exact
            raise UnknownClassError(
                f"Ambiguous {self.dataset} class {cls!r}: it names several classes: "
                + ", ".join(f"{i} ({self.names[i]!r})" for i in idx)
                + ". Write the name with its exact case, or give the index."
            )
        if self._synset_source is not None and _WNID_RE.match(key):
            syn = self._synsets()  # a wnid needs the file: raise if missing
            if key in syn.wnid_to_index:
                return syn.wnid_to_index[key]
            raise UnknownClassError(
                f"Unknown wnid {cls.strip()!r}: not among the {self.num_classes} classes of {syn.path}. "
                f"Use search() to find a class by name."
            )
        syn = self._synsets_or_none()
        if syn is not None and key in syn.alias_to_indices:
            idx = syn.alias_to_indices[key]
            if len(idx) == 1:
                return idx[0]
            cands = ", ".join(f"{i} ({self.names[i]!r}, {syn.wnids[i]})" for i in idx)
            raise UnknownClassError(
                f"Ambiguous {self.dataset} class {cls!r}: it names several classes: {cands}. "
                f"Give the index, the wnid or the primary name instead."
            )
        raise self._unknown(cls)

    def name(self, i: Any) -> str:
        """Primary human name of class ``i`` (also accepts a name or wnid, returning its primary name)."""
        return self.names[self.index(i)]

    def wnid(self, i: Any) -> str:
        """Wnid of class ``i`` (an index, name or wnid).

        Raises:
            DataNotFoundError: The synset file is missing.
            UnknownClassError: Unknown class, or the data set has no wnids (CIFAR-10).
        """
        idx = self.index(i)
        return self._synsets().wnids[idx]

    def search(self, query: str, k: int = 10) -> list[tuple[int, str]]:
        """Find classes for a search box: exact, prefix and substring matches, then fuzzy ones.

        Searches primary names, and (when the synset file is present) synonyms and wnids.

        Args:
            query: Free text, case-insensitive.
            k: Maximum number of results.

        Returns:
            Up to ``k`` ``(index, primary name)`` pairs, best first, each class once. An
            empty query returns the first ``k`` classes.
        """
        q = _norm(str(query))
        if k <= 0:
            return []
        if not q:
            return [(i, self.names[i]) for i in range(min(k, self.num_classes))]
        syn = self._synsets_or_none()
        # (normalised key, class index, 0 for a primary name / 1 for a synonym or wnid)
        entries: list[tuple[str, int, int]] = [(_norm(n), i, 0) for i, n in enumerate(self.names)]
        if syn is not None:
            entries += [(key, i, 1) for key, idx in syn.alias_to_indices.items() for i in idx]
            entries += [(w, i, 1) for i, w in enumerate(syn.wnids)]
        best: dict[int, tuple] = {}

        def offer(i: int, rank: tuple) -> None:
            if i not in best or rank < best[i]:
                best[i] = rank

        word = re.compile(r"(?<![a-z0-9])" + re.escape(q) + r"(?![a-z0-9])")
        for key, i, secondary in entries:
            tier = _match_tier(key, q, word)
            if tier is not None:
                offer(i, (tier, secondary, len(key), i))
        if len(best) < k:
            keys: dict[str, list[int]] = {}
            for key, i, _ in entries:
                keys.setdefault(key, []).append(i)
            close = difflib.get_close_matches(q, list(keys), n=max(3 * k, 10), cutoff=0.6)
            for pos, key in enumerate(close):
                for i in keys[key]:
                    offer(i, (5, 0, pos, i))
        ranked = sorted(best.items(), key=lambda kv: kv[1])[:k]
        return [(i, self.names[i]) for i, _ in ranked]

    def resolve(self, classes: Any, n: int) -> torch.Tensor:
        """Turn one class or a batch of classes into a LongTensor of length ``n``.

        Args:
            classes: An int, a name or wnid (broadcast to all ``n``), or a list / tuple /
                numpy array / tensor of ints or names, of length ``n`` (or 1: broadcast).
            n: Batch size.

        Returns:
            LongTensor ``(n,)`` of class indices (on the input tensor's device if a tensor
            was given, else on the CPU).

        Raises:
            UnknownClassError: An unknown name or an out-of-range index.
            InputError: Wrong length, wrong dimensionality or a non-integer tensor.
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise InputError(f"n must be a non-negative int, got {n!r}.")
        n = int(n)
        if isinstance(classes, torch.Tensor):
            if classes.dtype.is_floating_point or classes.dtype.is_complex or classes.dtype == torch.bool:
                raise InputError(f"Class tensor must have an integer dtype, got {classes.dtype}.")
            if classes.dim() > 1:
                raise InputError(f"Class tensor must be a scalar or 1-D, got shape {tuple(classes.shape)}.")
            t = classes.reshape(-1).long()
            if t.numel() > 0:
                lo, hi = int(t.min()), int(t.max())
                if lo < 0 or hi >= self.num_classes:
                    bad = lo if lo < 0 else hi
                    raise UnknownClassError(
                        f"Class index {bad} is out of range for {self.dataset} (0 to {self.num_classes - 1})."
                    )
            if t.numel() == 1 and classes.dim() == 0:
                return t.expand(n).clone()
            return self._fit_length(t, n)
        if isinstance(classes, (str, int, np.integer)):
            return torch.full((n,), self.index(classes), dtype=torch.long)
        if isinstance(classes, np.ndarray):
            if classes.ndim == 0:
                return torch.full((n,), self.index(classes.item()), dtype=torch.long)
            if classes.ndim > 1:
                raise InputError(f"Class array must be 1-D, got shape {classes.shape}.")
            classes = classes.tolist()
        if isinstance(classes, (list, tuple)):
            t = torch.tensor([self.index(c) for c in classes], dtype=torch.long)
            return self._fit_length(t, n)
        raise InputError(f"classes must be an int, a name, or a list/tensor of them, got {type(classes).__name__}.")

    @staticmethod
    def _fit_length(t: torch.Tensor, n: int) -> torch.Tensor:
        if t.numel() == n:
            return t
        if t.numel() == 1:
            return t.expand(n).clone()
        raise InputError(f"Got {t.numel()} classes for a batch of {n}: give one class or exactly {n}.")

    # ------------------------------------------------------------------ dunder
    def __len__(self) -> int:
        return self.num_classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, cls: Any) -> bool:
        try:
            self.index(cls)
        except (UnknownClassError, DataNotFoundError):
            return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dataset={self.dataset!r}, num_classes={self.num_classes})"


@functools.lru_cache(maxsize=1)
def _imagenet_names() -> tuple[str, ...]:
    from torchvision.models import ResNet50_Weights  # here: torchvision imports torch._dynamo (seconds)

    names = tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    assert len(names) == 1000, len(names)
    return names


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> ClassIndex:
    """The 1000 ImageNet-1k classes (cached).

    Names come from torchvision (no data needed); wnids and synonyms from
    ``<data_root>/imagenet/LOC_synset_mapping.txt``, read when first needed from the
    data root current at that time.
    """
    return ClassIndex(_imagenet_names(), dataset="imagenet", synset_source=synset_file)


@functools.lru_cache(maxsize=1)
def cifar10_classes() -> ClassIndex:
    """The 10 CIFAR-10 classes in the standard order (airplane ... truck); no wnids."""
    return ClassIndex(CIFAR10_NAMES, dataset="cifar10")


_DATASETS: dict[str, Callable[[], ClassIndex]] = {
    "imagenet": imagenet_classes,
    "imagenet1k": imagenet_classes,
    "ilsvrc2012": imagenet_classes,
    "cifar10": cifar10_classes,
}


def class_index(name: str) -> ClassIndex:
    """The :class:`ClassIndex` of a data set by name: ``"imagenet"`` or ``"cifar10"``.

    Case, ``-`` and ``_`` are ignored (``"CIFAR-10"`` works).

    Raises:
        InputError: Unknown data set name.
    """
    key = re.sub(r"[-_\s]", "", str(name).lower())
    if key not in _DATASETS:
        raise InputError(f"Unknown data set {name!r} for class names: use 'imagenet' or 'cifar10'.")
    return _DATASETS[key]()
