"""The `data` stage's library: sources (digits, synthetic, image folders, CIFAR-100), duplicates, the per-class split, normalisation statistics."""
