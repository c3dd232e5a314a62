"""What a study's metric variance comes from (Locatello et al. 2019 §5), checked on a hand-computed case."""

import numpy as np
import pandas as pd
import pytest

from disentangle.reports.table import variance_explained
from disentangle.reports.viz import variance_figure


def _table(values: dict) -> pd.DataFrame:
    rows = []
    for (model, beta), ys in values.items():
        for seed, y in enumerate(ys):
            rows.append({"run_id": f"{model}-{beta}-{seed}", "model": model, "dataset": "dsprites", "beta": beta, "seed": seed,
                         "finished": True, "mig.discrete_mig": float(y)})
    return pd.DataFrame(rows)


def test_the_shares_are_the_sums_of_squares_by_hand(tmp_path):
    # grand mean 8, SS 168; model means 4 and 12: 128; setting means 2, 6, 10, 14: 160
    table = _table({("beta_vae", 1.0): [1, 3], ("beta_vae", 4.0): [5, 7], ("factor_vae", 1.0): [9, 11], ("factor_vae", 4.0): [13, 15]})
    (row,) = variance_explained(table).to_dict("records")
    assert (row["metric"], row["runs"], row["settings"]) == ("mig.discrete_mig", 8, 4)
    assert row["model"] == pytest.approx(128 / 168) and row["hyperparameters"] == pytest.approx(32 / 168) and row["seed"] == pytest.approx(8 / 168)
    assert variance_figure(variance_explained(table), tmp_path).is_file()


def test_a_metric_that_only_the_seed_moves_is_all_seed_and_a_constant_one_is_undefined():
    with pytest.warns(UserWarning, match=r"the model's share \(one model\) cannot be estimated"):
        seeds_only = variance_explained(_table({("beta_vae", 1.0): [1, 5], ("beta_vae", 4.0): [1, 5]}))
    assert np.isnan(seeds_only.loc[0, "model"])  # one model: its share is 0 by construction, not a measurement
    assert seeds_only.loc[0, ["hyperparameters", "seed"]].tolist() == pytest.approx([0, 1])
    constant = variance_explained(_table({("beta_vae", 1.0): [2, 2], ("factor_vae", 1.0): [2, 2]}))
    assert np.isnan(constant.loc[0, "seed"]) and variance_figure(constant, ".") is None


def test_rank_correlations_by_hand_and_their_table():
    """ρ = 1 − 6 Σd² / (n (n² − 1)): ranks 1..5 against 2 1 4 3 5 give Σd² = 4, ρ = 0.8; a monotone
    decreasing transform gives −1; a constant metric correlates with nothing (NaN); below five
    finished runs there is no matrix."""
    from disentangle.reports.table import rank_correlations

    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    table = pd.DataFrame({"finished": True, "model": "beta_vae", "seed": range(5), "mig.discrete_mig": x,
                          "sap.sap_score": [0.2, 0.1, 0.4, 0.3, 0.5], "modularity.modularity_score": -x ** 3, "dci.disentanglement": 0.5})
    rho = rank_correlations(table)
    assert rho.loc["mig.discrete_mig", "sap.sap_score"] == pytest.approx(1 - 6 * 4 / (5 * 24))
    assert rho.loc["mig.discrete_mig", "modularity.modularity_score"] == pytest.approx(-1)
    assert np.isnan(rho.loc["mig.discrete_mig", "dci.disentanglement"])
    assert (np.diag(rho.drop(index="dci.disentanglement", columns="dci.disentanglement")) == 1).all()
    assert rank_correlations(table.iloc[:4]).empty
    unfinished = table.assign(finished=[True] * 4 + [False])
    assert rank_correlations(unfinished).empty  # only finished runs count


def test_one_seed_per_setting_leaves_the_seed_share_unestimated_not_zero():
    with pytest.warns(UserWarning, match=r"the seed's and the hyperparameters' shares \(one seed per setting\) cannot be estimated"):
        (row,) = variance_explained(_table({("beta_vae", 1.0): [1], ("beta_vae", 4.0): [3], ("factor_vae", 1.0): [9],
                                            ("factor_vae", 4.0): [14]})).to_dict("records")
    assert np.isnan(row["seed"]) and np.isnan(row["hyperparameters"]) and row["model"] == pytest.approx(90.25 / 104.75)  # by hand


def test_the_same_run_in_two_folders_is_counted_once():
    from disentangle.reports.table import summarize_long

    table = _table({("beta_vae", 1.0): [1, 3]})
    twin = table.iloc[[0]].assign(run_id="copy-of-the-first")
    for frame in (table, twin):
        frame["status"], frame["precision"], frame["batch_size"], frame["steps"] = "done", "fp32", 64, 10
    with pytest.warns(UserWarning, match="are one run .the same config and seed.: counted once"):
        long = summarize_long(pd.concat([table, twin], ignore_index=True))
    assert long.loc[0, "count"] == 2 and long.loc[0, "seeds"] == "0 1"
