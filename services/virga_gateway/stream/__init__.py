"""The live event stream: every change the projection folds, pushed to browsers (SSE)."""
