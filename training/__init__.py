"""Vigil's model-training package (SageMaker script mode: `python -m training`).

Learns "normal" for each camera from its own archived clips with a small convolutional
autoencoder trained from scratch, calibrates alert thresholds on held-out normal frames, and
exports a self-contained TorchScript artifact (`model.tar.gz`) that `inference/` loads without
importing this package.
"""
