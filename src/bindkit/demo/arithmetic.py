"""The demo's embedding-arithmetic queries: an attribute seen in one modality + a digit from another.

unit(a_i) + unit(b_j) against a gallery of a's modality (the paper's App. B.4 recipe, weights 0.5 each): the share
of the top k holding item i's attribute (the surface an image shows, the relief a depth map shows) AND item j's digit
(spoken in an audio clip, traced by an IMU recording); i's own item is left out of its results.

Two queries are scored. `sum` is the paper's. `replace` first takes out of unit(a_i) its component in the span of
the anchor's ten text class embeddings (the digit it shows, which competes with the spoken one), then adds the other
term: image arithmetic's "remove what you replace", with nothing learnt and no label used. Each is swept over the
digit term's weight, and reported beside a alone, b alone and the best share the gallery allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bindkit.evaluate import compose, nearest, share_with_attributes

# (attribute modality = gallery, digit modality, attribute); the first is the report's headline query
PAIRS = (("image", "audio", "surface"), ("image", "imu", "surface"), ("depth", "audio", "relief"))
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)  # the digit term's weight; the attribute term gets 1 - w
QUERIES = ("sum", "replace")
HEADLINE = ("image+audio", "replace", "0.5")  # the query the target is checked on, fixed before measuring


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.as_tensor(x).double(), dim=-1)


def drop_span(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Unit rows of x (N, D) with their component in the span of the rows of `basis` (C, D) taken out."""
    q, _ = torch.linalg.qr(_unit(basis).T)  # (D, C) orthonormal
    x = _unit(x)
    return _unit(x - (x @ q) @ q.T)


def draw_queries(digit: np.ndarray, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index pairs: i without replacement, j a random item with another digit than i's."""
    rng = np.random.default_rng(seed)
    qi = rng.choice(len(digit), size=min(n_queries, len(digit)), replace=False)
    qj = np.array([rng.choice(np.nonzero(digit != digit[i])[0]) for i in qi])
    return qi, qj


def top_k_share(query: torch.Tensor, gallery: torch.Tensor, qi: np.ndarray, attrs: list, want: list, k: int,
                ) -> float:  # fmt: skip
    """Share (%) of each query's top k in `gallery` (its own item qi left out) holding every wanted attribute."""
    _, ranked = nearest(query, gallery, k + 1)
    idx = np.stack([row[row != i][:k] for row, i in zip(ranked.numpy(), qi, strict=True)])
    return share_with_attributes(idx, attrs, want)


def arithmetic_query(image: torch.Tensor, audio: torch.Tensor, surface: list[str], digit: np.ndarray,
                     n_queries: int, seed: int = 0, k: int = 5, weight: float = 0.5,
                     drop: torch.Tensor | None = None, names: tuple[str, str] = ("image", "audio"),
                     ) -> dict[str, float]:  # fmt: skip
    """unit(a_i)*(1-w) + unit(b_j)*w against a's items (a = `image`, b = `audio` by default): share (%) of the top k
    with i's attribute (`surface`) AND j's digit; `drop` (C, D) takes that span out of a first (the `replace`
    query). Baselines: a alone and b alone; `ceiling`: the best share the gallery allows."""
    qi, qj = draw_queries(digit, n_queries, seed)
    attr = np.asarray(surface)
    attrs, want = [attr, digit], [attr[qi], digit[qj]]
    a = _unit(image[qi]) if drop is None else drop_span(image[qi], drop)
    out = {}
    for name, q in ((f"{names[0]}+{names[1]}", compose([a, audio[qj]], [1 - weight, weight])),
                    (names[0], _unit(image[qi])), (names[1], _unit(audio[qj]))):  # fmt: skip
        out[name] = top_k_share(q, image, qi, attrs, want, k)
    both = (attr[None, :] == want[0][:, None]) & (digit[None, :] == want[1][:, None])
    out["ceiling"] = float(np.minimum(both.sum(1), k).mean() / k * 100)
    out["n_queries"], out["k"] = len(qi), k
    return out


def arithmetic_table(emb: dict[str, torch.Tensor], attributes: dict[str, list], digit: np.ndarray,
                     cls: torch.Tensor, n_queries: int, seed: int = 0, k: int = 5) -> dict[str, Any]:  # fmt: skip
    """Every pair of `PAIRS`: both queries at every weight of `WEIGHTS`, the single-term baselines and the ceiling."""
    out: dict[str, Any] = {}
    for a, b, attr in PAIRS:
        row: dict[str, Any] = {"attribute": attr}
        for query in QUERIES:
            drop = cls if query == "replace" else None
            runs = {w: arithmetic_query(emb[a], emb[b], attributes[attr], digit, n_queries, seed, k, w, drop, (a, b))
                    for w in WEIGHTS}  # fmt: skip
            row[query] = {f"{w:.1f}": r[f"{a}+{b}"] for w, r in runs.items()}
        base = runs[WEIGHTS[0]]
        row |= {a: base[a], b: base[b], "ceiling": base["ceiling"], "n_queries": base["n_queries"], "k": k}
        row["best_single"] = max(base[a], base[b])
        out[f"{a}+{b}"] = row
    return out


def arithmetic_target(table: dict[str, Any]) -> dict[str, Any]:
    """The issue's target on the headline query: >= 50% of the top k, and >= 3x the better single term."""
    pair, query, w = HEADLINE
    row = table[pair]
    share, single = row[query][w], row["best_single"]
    met = share >= 50 and share >= 3 * single
    return {"met": met, "detail": f"{pair} {query} w={w}: {share:.1f}% (best single term {single:.1f}%)"}
