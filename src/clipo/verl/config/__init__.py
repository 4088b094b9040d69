"""Hydra config of ``python -m clipo.verl.main`` (a package so Hydra can load it as pkg://clipo.verl.config)."""
