"""Training: the engine (engine.py) and its recipes (pretraining, fine-tuning, distillation), run settings and saved
state, torchrun support; the linear probe and multi-view evaluation."""
