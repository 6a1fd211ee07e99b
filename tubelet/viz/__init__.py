"""Pictures of what a model does: the reconstruction figure."""
