"""Engines that run what an expert writes (one sub-package per output kind that can be executed)."""
