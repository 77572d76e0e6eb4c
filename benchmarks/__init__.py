"""Speed benchmarks of icrst-jax, and the PyTorch reference they compare against."""
