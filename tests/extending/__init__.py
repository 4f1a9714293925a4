"""Proof that the feature seam works: a third feature that lives here, registered in a test."""
