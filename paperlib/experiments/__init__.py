"""The experiment harness: training, baselines, the paper's tables and the studies built on them."""
