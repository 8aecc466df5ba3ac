"""Test helpers: single-operator TFLite models run on LiteRT reference kernels."""
