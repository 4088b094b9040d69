"""CLIPO on upstream verl 0.9.1 (GPU clusters): no fork, two trainer hooks and one worker patch.

- ``clipo.verl.trainer``: verl v1 trainer mode ``clipo_sync`` (contrastive head in the trainer process);
- ``clipo.verl.worker_patch``: mean-pooled last hidden states from the actor's old-log-prob forward;
- ``clipo.verl.main``: ``python -m clipo.verl.main <overrides>`` (Hydra config ``config/clipo_trainer.yaml``);
- ``clipo.verl.overrides`` / ``clipo.verl.launch``: paper run → full override list
  (``clipo train --backend verl``);
- ``clipo.verl.evaluate``: GPU evaluation with SGLang's offline engine, same records as the mini evaluator.

This module stays import-light: the names below are the contract between trainer and worker patch.
"""

HIDDEN_FLAG = "clipo_return_hidden"
"""``extra_info`` key the trainer sets on the old-log-prob batch to ask the actor for pooled hidden states."""

HIDDEN_SHIFT = "clipo_hidden_shift"
"""``extra_info`` key: pool positions shifted this many tokens to the left (0 or 1)."""

HIDDEN_FIELD = "clipo_hidden_mean"
"""TransferQueue field (and model_output key) of the pooled hidden states, one [H] row per trajectory."""
