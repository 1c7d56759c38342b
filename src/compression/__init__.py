"""Model compression: pruning helpers, unit removal, int8 quantization, size and latency."""
