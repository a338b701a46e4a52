"""The stage after training: a fitted pipeline as one graph that runs without transferlab (ONNX)."""
