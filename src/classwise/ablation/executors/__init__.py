"""Where the ladder's steps run: ``local`` (one after another, here) or ``ray`` (Ray tasks, in parallel)."""
