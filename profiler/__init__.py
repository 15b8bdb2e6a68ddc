"""The profiler: builds models from their config with random weights and measures them.

Depends on the core (``planner``) and on torch, transformers and nvidia-ml-py; the core never
imports it.
"""
