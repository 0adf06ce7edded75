"""Execution on existing engines, as optional extras imported only when asked for:
Ray Data for scoring (`attnad score --engine ray`, ray_engine.py) and torchrun/DDP for training
(`attnad train --distributed`, distributed.py)."""
