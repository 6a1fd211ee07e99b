"""Pretraining: recipe config, optimizer and schedule, checkpoints, torchrun support, the training loop."""
