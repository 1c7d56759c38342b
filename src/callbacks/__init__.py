"""Project callbacks (Lightning callbacks the configs name by `_target_`, like Lightning's own)."""
