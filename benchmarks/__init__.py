"""Speed benchmarks of icrst-jax (one module per question), their harness, and the
baselines they compare against (``benchmarks/baselines/``)."""
