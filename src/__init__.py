"""LLM Optimization Lab: fine-tune, compress and compare transformer text classifiers."""
