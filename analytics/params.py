"""Every tunable parameter's rule, declared once: its type, range, default and help.

The library checks values through these rules, the dashboard builds its sliders and number
inputs from them, and ``embex`` takes its option defaults and help text from them, so a range
changed here changes all three. Like scikit-learn's ``_parameter_constraints``, with the help
text of datasette's settings table.

>>> from analytics.params import RULES, check_params, defaults
>>> RULES["umap"]["n_neighbors"].describe()
'2–200, default 15'
>>> check_params("umap", {"n_neighbors": 30})
{'n_neighbors': 30}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real

import numpy as np

from .errors import ParameterError

KINDS = ("int", "float", "choice", "bool")


@dataclass(frozen=True)
class Rule:
    """One parameter: ``kind`` is "int", "float", "choice" or "bool"; ``low``/``high`` bound
    numbers (inclusive; ``None`` for no bound), ``choices`` lists a choice's values, ``step``
    is the widgets' increment. ``owner`` names the method or function in messages."""

    name: str
    kind: str
    default: object
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""
    step: float | None = None
    owner: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Rule {self.name}: kind must be one of {KINDS}, not {self.kind!r}.")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"Rule {self.name}: a choice needs choices.")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Rule {self.name}: low {self.low} is above high {self.high}.")
        try:  # a table whose default breaks its own rule fails on import
            self.check(self.default)
        except ParameterError as exc:
            raise ValueError(f"Rule {self.name}: its default breaks the rule ({exc})") from None

    @property
    def title(self) -> str:
        """The parameter as messages name it, e.g. "UMAP n_neighbors"."""
        return f"{self.owner} {self.name}".strip()

    def _range(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(_fmt(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.low is not None and self.high is not None:
            return f"{_fmt(self.low)}–{_fmt(self.high)}"
        if self.low is not None:
            return f"at least {_fmt(self.low)}"
        if self.high is not None:
            return f"at most {_fmt(self.high)}"
        return "any " + ("integer" if self.kind == "int" else "finite number")

    def describe(self) -> str:
        """Range and default in words: ``"2–200, default 15"``."""
        return f"{self._range()}, default {_fmt(self.default)}"

    def _refuse(self, value, why: str = ""):
        what = "an integer" if self.kind == "int" else "a finite number"
        if self.kind in ("choice", "bool"):
            allowed = f"must be {self._range()}"
        elif self.low is not None and self.high is not None:
            allowed = f"must be {what} between {_fmt(self.low)} and {_fmt(self.high)}"
        elif self.low is not None or self.high is not None:
            allowed = f"must be {what}, {self._range()}"
        else:
            allowed = f"must be {what}"
        got = f"{value!r}" + (f" ({type(value).__name__})" if why == "type" else "")
        fix = "Pass one of those" if self.kind == "choice" else "Pass a value in that range"
        raise ParameterError(
            f"{self.title} {allowed}, got {got}. {fix}, or leave it out for the "
            f"default ({_fmt(self.default)})."
        )

    def check(self, value):
        """``value`` as this rule's type (int, float, str or bool), or :class:`ParameterError`
        naming the parameter, the allowed range and the default."""
        if self.kind == "choice":
            try:
                ok = value in self.choices
            except TypeError:
                ok = False
            if not ok:
                self._refuse(value)
            return value
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                self._refuse(value, "type")
            return bool(value)
        if isinstance(value, (bool, np.bool_)):
            self._refuse(value, "type")
        if self.kind == "int":
            if not isinstance(value, Integral):
                self._refuse(value, "type")
            value = int(value)
        else:
            if not isinstance(value, Real):
                self._refuse(value, "type")
            try:
                number = float(value)
            except OverflowError:  # an integer too large for a float
                number = math.inf
            if not math.isfinite(number):
                self._refuse(value)
            value = number
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            self._refuse(value)
        return value

    def parse(self, text: str):
        """A value typed as text (a URL query parameter, a command-line option), checked."""
        raw = str(text).strip()
        if self.kind == "int":
            try:
                value = int(raw)
            except ValueError:
                self._refuse(text)
        elif self.kind == "float":
            try:
                value = float(raw)
            except ValueError:
                self._refuse(text)
        elif self.kind == "bool":
            lowered = raw.lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                self._refuse(text)
            value = lowered in ("1", "true", "yes", "on")
        else:
            value = raw
        return self.check(value)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _rules(owner: str, *rules: Rule) -> dict[str, Rule]:
    return {r.name: replace(r, owner=owner) for r in rules}


_METRICS = ("cosine", "euclidean", "correlation")

#: method or function -> parameter name -> rule. The one place ranges and defaults are written.
# fmt: off
RULES: dict[str, dict[str, Rule]] = {
    "projection": _rules("projection",
        Rule("method", "choice", "umap", choices=("umap", "pca", "tsne"),
             help="umap keeps clusters apart; pca is linear and fast; tsne keeps local neighbourhoods"),
    ),
    "pca": _rules("PCA"),
    "umap": _rules("UMAP",
        Rule("n_neighbors", "int", 15, low=2, high=200, step=1,
             help="neighbours each text's layout considers: small keeps local detail, large the "
                  "overall shape (capped at the texts fitted)"),
        Rule("min_dist", "float", 0.1, low=0.0, high=1.0, step=0.05,
             help="how tightly points may pack: small draws tight clusters, large spreads them"),
        Rule("metric", "choice", "cosine", choices=_METRICS, help="distance between texts"),
    ),
    "tsne": _rules("t-SNE",
        Rule("perplexity", "float", 30.0, low=2.0, high=100.0, step=1.0,
             help="effective number of neighbours each text balances (capped at a third of the "
                  "texts fitted)"),
        Rule("metric", "choice", "cosine", choices=_METRICS, help="distance between texts"),
    ),
    "outliers": _rules("outliers",
        Rule("quantile", "float", 0.05, low=0.001, high=0.5, step=0.001,
             help="share of the corpus flagged: the most outlying texts"),
        Rule("count", "int", 20, low=1, high=None, step=1,
             help="number of most outlying texts flagged (instead of a share)"),
        Rule("k", "int", 10, low=1, high=50, step=1,
             help="nearest neighbours per text: local depth is taken over them, and they are "
                  "shown as evidence"),
        Rule("by", "choice", "local", choices=("local", "global", "combined"),
             help="local: depth w.r.t. the text's k nearest neighbours (no near neighbours); "
                  "global: TTE depth w.r.t. the whole corpus (far from its centre); combined: "
                  "the mean of the two depth percentiles"),
    ),
    "shift": _rules("shift test",
        Rule("permutations", "int", 999, low=0, high=100_000, step=100,
             help="re-splits of the pooled texts for the calibrated permutation p (0 skips it)"),
        Rule("alpha", "float", 0.05, low=0.0001, high=0.5, step=0.01,
             help="significance level of the verdict"),
        Rule("top", "int", 3, low=1, high=1000, step=1,
             help="example texts listed from each corpus"),
    ),
    "depth": _rules("depth",
        Rule("top", "int", 5, low=1, high=1000, step=1,
             help="texts listed at each end of the ranking"),
    ),
    "representatives": _rules("representatives",
        Rule("k", "int", 5, low=1, high=1000, step=1,
             help="texts picked per label (or overall); a label with fewer gives all it has"),
        Rule("method", "choice", "depth", choices=("depth", "medoid", "random"),
             help="depth: the deepest (most typical) texts; medoid: the text nearest each "
                  "k-means centre; random: a seeded draw (the baseline)"),
        Rule("max_similarity", "float", 0.95, low=0.5, high=1.0, step=0.01,
             help="depth only: a text this similar (cosine) to one already picked is passed "
                  "over for the next deepest, so picks are not near-copies (1: the k deepest)"),
    ),
    "overlap": _rules("overlap",
        Rule("opening_chars", "int", 50, low=10, high=1000, step=10,
             help="texts whose first this many normalised characters match count as near "
                  "duplicates"),
        Rule("min_similarity", "float", 0.98, low=0.5, high=1.0, step=0.01,
             help="texts whose embeddings are at least this similar (cosine) count as near "
                  "duplicates"),
    ),
    "retrieval": _rules("retrieval",
        Rule("k", "int", 10, low=1, high=100, step=1,
             help="texts returned for a query"),
        Rule("method", "choice", "dense", choices=("dense", "bm25", "hybrid"),
             help="dense: cosine of embeddings (meaning); bm25: shared words (exact terms, rare "
                  "names); hybrid: both, fused"),
    ),
    "bm25": _rules("BM25",
        Rule("k1", "float", 1.2, low=0.0, high=3.0, step=0.1,
             help="term-frequency saturation: 0 counts a word once however often it occurs"),
        Rule("b", "float", 0.75, low=0.0, high=1.0, step=0.05,
             help="length normalisation: 0 ignores document length, 1 divides it out fully"),
    ),
    "hybrid": _rules("hybrid",
        Rule("fusion", "choice", "convex", choices=("convex", "rrf"),
             help="convex: weighted sum of normalised scores (cosine scaled to its candidates' "
                  "range, BM25 divided by the best); rrf: reciprocal rank fusion"),
        Rule("weight", "float", 0.5, low=0.0, high=1.0, step=0.05,
             help="with fusion convex: the dense score's weight (1 - weight goes to BM25)"),
        Rule("rrf_k", "int", 60, low=1, high=1000, step=1,
             help="with fusion rrf: the constant in 1 / (rrf_k + rank); larger flattens ranks"),
        Rule("candidates", "int", 100, low=1, high=1000, step=10,
             help="hits taken from each method before fusing (at least k)"),
    ),
}
# fmt: on


def rules(method: str) -> dict[str, Rule]:
    """The rules of ``method`` (a key of :data:`RULES`), or :class:`ParameterError`."""
    try:
        return RULES[method]
    except (KeyError, TypeError):
        raise ParameterError(f"No parameter rules for {method!r}; known: {', '.join(RULES)}.") from None


def defaults(method: str) -> dict:
    """Every parameter of ``method`` at its default."""
    return {name: rule.default for name, rule in rules(method).items()}


def check_params(method: str, params: dict) -> dict:
    """``params`` checked against ``method``'s rules and converted to their types; an unknown
    name raises :class:`ParameterError` listing the known ones."""
    table = rules(method)
    unknown = sorted(set(params) - set(table))
    if unknown:
        owner = next(iter(table.values())).owner if table else method.upper()  # "PCA"
        known = ", ".join(table) or "none"
        raise ParameterError(f"{owner} has no parameter {', '.join(unknown)} (it takes {known}).")
    return {name: table[name].check(value) for name, value in params.items()}


def resolve(method: str, params: dict) -> dict:
    """``method``'s defaults updated with ``params``, checked."""
    return {**defaults(method), **check_params(method, params)}


__all__ = ["KINDS", "RULES", "Rule", "check_params", "defaults", "resolve", "rules"]
