"""A trained run as a model people can use: Hugging Face / ONNX export and prediction on raw text."""
