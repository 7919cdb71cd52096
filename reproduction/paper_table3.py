"""The paper's Table 3 (Recall@20, NDCG@20), as ``../shared/docs/ALGORITHM.md`` §6 lists it."""

from __future__ import annotations

#: Strategy keys of the table, in the paper's order.
STRATEGIES: tuple[str, ...] = ("nonorm", "grid-tau", "c-tau", "cu-tau", "adap-tau0", "adap-tau")
LABELS: dict[str, str] = {
    "nonorm": "No Norm", "grid-tau": "Grid Search τ", "c-tau": "C-τ", "cu-tau": "Cu-τ",
    "adap-tau0": "Adap-τ0", "adap-tau": "Adap-τ",
}
DATASETS: tuple[str, ...] = ("yelp2018", "amazon-book", "ml-1m", "gowalla")

# backbone -> strategy -> one (Recall@20, NDCG@20) per dataset, in DATASETS order.
_TABLE: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "mf": {
        "nonorm": ((.0677, .0554), (.0457, .0352), (.2721, .2525), (.1616, .1366)),
        "grid-tau": ((.0714, .0586), (.0542, .0422), (.2789, .2624), (.1761, .1399)),
        "c-tau": ((.0647, .0528), (.0538, .0418), (.2472, .2260), (.1723, .1362)),
        "cu-tau": ((.0691, .0566), (.0541, .0421), (.2600, .2398), (.1751, .1383)),
        "adap-tau0": ((.0714, .0585), (.0549, .0427), (.2792, .2638), (.1754, .1386)),
        "adap-tau": ((.0721, .0594), (.0553, .0430), (.2815, .2673), (.1838, .1506)),
    },
    "lightgcn": {
        "nonorm": ((.0649, .0530), (.0411, .0315), (.2576, .2427), (.1830, .1554)),
        "grid-tau": ((.0730, .0605), (.0596, .0477), (.2767, .2575), (.1878, .1577)),
        "c-tau": ((.0653, .0537), (.0571, .0453), (.2529, .2282), (.1731, .1431)),
        "cu-tau": ((.0690, .0571), (.0586, .0468), (.2582, .2357), (.1797, .1488)),
        "adap-tau0": ((.0724, .0603), (.0601, .0480), (.2744, .2571), (.1841, .1526)),
        "adap-tau": ((.0733, .0612), (.0612, .0490), (.2787, .2615), (.1901, .1590)),
    },
}


def paper_numbers(dataset: str, backbone: str, strategy: str) -> tuple[float, float] | None:
    """``(Recall@20, NDCG@20)`` published for this cell, or ``None`` if there is none."""
    if dataset not in DATASETS:
        return None
    row = _TABLE.get(backbone, {}).get(strategy)
    return None if row is None else row[DATASETS.index(dataset)]
