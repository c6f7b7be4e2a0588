"""Demo: the realistic scenario `python -m mlops_core demo` seeds into an empty store.

`data` generates the synthetic tables (fixed seeds, nothing downloaded), `scenario` trains
and registers the models, writes the inference log, policy and accounts, and `evidence`
seeds the fairness and drift evidence. The demo may import every layer below commands;
nothing outside commands and tests imports it.
"""
