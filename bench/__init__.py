"""Benchmarks of the IRSA Portal's Terraform path; see bench/README.md."""
