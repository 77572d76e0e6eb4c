"""The baselines the benchmarks compare against: the authors' PyTorch pipeline and host-side pairing."""
