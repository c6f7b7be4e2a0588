"""Evidence: the computations a reviewer reads, and the evidence they leave in MLflow.

Drift (an engine equal to Evidently's `DataDriftPreset`), data profiles, schema checks,
fairness (equal to Fairlearn's `MetricFrame`) and the comparison of runs and versions,
plus the monitoring and fairness runs stored in MLflow. Modules here may import `stores`,
`people` and the top-level modules; never governance, commands, demo, ui or streamlit.
"""
