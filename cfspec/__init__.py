"""cfspec: declarative, checked structural causal models for counterfactual image-text data."""
__version__ = "0.1.0"
