"""Clause extraction from contract text: segmentation, rules, the shipped logistic model,
normalised values, scoring and training. Pure functions; imports nothing of knowledge/."""
