"""Synthetic tabular populations for the demo models, deterministic for a given seed.

Each model's label depends on its features and, to a lesser degree, directly on a
sensitive attribute nobody feeds the model; one feature (`region` / `zip_area`) is a proxy
for that attribute. A model that uses the proxy is more accurate and less fair, which is
exactly the trade-off a reviewer has to weigh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SENSITIVE = ["gender", "age_band"]
AGE_BANDS = ["18-29", "30-44", "45-59", "60+"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    target: str
    numeric: list[str]
    categorical: list[str]
    proxy: str
    newer_feature: str
    drifting: list[str]
    generate: Callable[[int, np.random.Generator, float], pd.DataFrame]

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical


def _people(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gender": rng.choice(["F", "M"], size=n, p=[0.5, 0.5]),
            "age_band": rng.choice(AGE_BANDS, size=n, p=[0.25, 0.35, 0.25, 0.15]),
        }
    )


def _proxy(is_group: np.ndarray, rng: np.random.Generator, levels: list[str]) -> np.ndarray:
    """A categorical feature whose first level is far more common inside the group."""
    inside = rng.choice(levels, size=len(is_group), p=[0.7] + [0.3 / (len(levels) - 1)] * 3)
    outside = rng.choice(levels, size=len(is_group), p=[0.1] + [0.9 / (len(levels) - 1)] * 3)
    return np.where(is_group, inside, outside)


def _label(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-logit))).astype(int)


def churn_population(n: int, rng: np.random.Generator, drift: float = 0.0) -> pd.DataFrame:
    """Telecom customers; `drift` in [0, 1] raises charges, support calls and monthly plans."""
    people = _people(n, rng)
    age_index = people["age_band"].map({b: i for i, b in enumerate(AGE_BANDS)}).to_numpy()
    tenure = np.clip(rng.gamma(2.0 + age_index, 8.0), 1, 120).round()
    charges = np.clip(rng.normal(70 + 18 * drift, 22, n), 15, 160).round(2)
    calls = rng.poisson(1.4 + 1.6 * drift, n)
    usage = np.round(rng.lognormal(3.2 - 0.15 * age_index, 0.5), 2)
    products = np.clip(1 + rng.poisson(1.0, n), 1, 5)
    monthly_share = 0.5 + 0.3 * drift
    contract = rng.choice(
        ["month-to-month", "one-year", "two-year"],
        size=n,
        p=[monthly_share, (1 - monthly_share) * 0.55, (1 - monthly_share) * 0.45],
    )
    payment = rng.choice(["electronic", "card", "bank", "mailed"], size=n, p=[0.4, 0.25, 0.2, 0.15])
    region = _proxy(people["gender"].to_numpy() == "F", rng, ["north", "south", "east", "west"])
    logit = (
        -1.6
        + 1.3 * (contract == "month-to-month")
        - 0.035 * tenure
        + 0.02 * (charges - 70)
        + 0.3 * calls
        + 1.8 * ((calls >= 3) & (charges > 85))
        + 1.5 * (tenure < 6)
        - 0.25 * (products - 2)
        + 1.5 * (people["gender"].to_numpy() == "F")
        # As the population drifts, repeated support calls start to predict churn: a
        # model without the feature (the legacy champion) loses accuracy.
        + 2.5 * drift * (calls >= 3)
    )
    frame = pd.DataFrame(
        {
            "tenure_months": tenure.astype(int),
            "monthly_charges": charges,
            "support_calls": calls.astype(int),
            "usage_gb": usage,
            "num_products": products.astype(int),
            "contract_type": contract,
            "payment_method": payment,
            "region": region,
        }
    )
    return pd.concat([frame, people], axis=1).assign(churned=_label(logit, rng))


def credit_population(n: int, rng: np.random.Generator, drift: float = 0.0) -> pd.DataFrame:
    """Loan applicants; `drift` lowers incomes, raises loan amounts and late payments."""
    people = _people(n, rng)
    age_index = people["age_band"].map({b: i for i, b in enumerate(AGE_BANDS)}).to_numpy()
    income = np.round(rng.lognormal(10.6 + 0.03 * age_index - 0.25 * drift, 0.45), 0)
    debt_ratio = np.clip(rng.beta(2, 5, n), 0, 1).round(3)
    credit_lines = rng.poisson(4, n)
    late = rng.poisson(0.6 + 1.2 * drift, n)
    loan = np.round(rng.lognormal(9.5 + 0.35 * drift, 0.6, n), 0)
    history = np.clip(rng.normal(6 + 1.5 * age_index, 3), 0, 50).round(1)
    employment = rng.choice(
        ["salaried", "self-employed", "contract", "unemployed"], size=n, p=[0.6, 0.2, 0.15, 0.05]
    )
    home = rng.choice(["rent", "mortgage", "own"], size=n, p=[0.45, 0.4, 0.15])
    zip_area = _proxy(people["gender"].to_numpy() == "M", rng, ["A", "B", "C", "D"])
    logit = (
        -1.7
        + 3.0 * (debt_ratio - 0.3)
        + 1.6 * (debt_ratio > 0.45)
        + 0.55 * late
        - 0.6 * (np.log(income) - 10.7)
        + 0.35 * (np.log(loan) - 9.5)
        - 0.04 * history
        + 0.9 * (employment == "unemployed")
        + 1.5 * ((late >= 2) & (debt_ratio > 0.35))
        + 2.0 * (people["gender"].to_numpy() == "M")
        # As the population drifts, late payments weigh more: the legacy champion, which
        # lacks them, loses accuracy.
        + 1.5 * drift * (late >= 2)
    )
    frame = pd.DataFrame(
        {
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_lines": credit_lines.astype(int),
            "late_payments": late.astype(int),
            "loan_amount": loan,
            "credit_history_years": history,
            "employment_type": employment,
            "home_ownership": home,
            "zip_area": zip_area,
        }
    )
    return pd.concat([frame, people], axis=1).assign(defaulted=_label(logit, rng))


CHURN = ModelSpec(
    name="churn-predictor",
    description="Predicts which telecom customers cancel their contract within 90 days.",
    target="churned",
    numeric=["tenure_months", "monthly_charges", "support_calls", "usage_gb", "num_products"],
    categorical=["contract_type", "payment_method", "region"],
    proxy="region",
    newer_feature="support_calls",
    drifting=["monthly_charges", "support_calls", "contract_type"],
    generate=churn_population,
)
CREDIT = ModelSpec(
    name="credit-default",
    description="Scores loan applications by the probability of default within 12 months.",
    target="defaulted",
    numeric=[
        "income",
        "debt_ratio",
        "credit_lines",
        "late_payments",
        "loan_amount",
        "credit_history_years",
    ],
    categorical=["employment_type", "home_ownership", "zip_area"],
    proxy="zip_area",
    newer_feature="late_payments",
    drifting=["income", "late_payments", "loan_amount"],
    generate=credit_population,
)
SPECS = [CHURN, CREDIT]
