"""A tenant app whose one migration the roll-out tests roll out (see rollout_settings)."""
