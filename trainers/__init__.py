"""Advantage estimators, losses and the SFT / RL training loops."""
