"""Augmentation: the op table (ops), policies as data (policy) and their search (search)."""
