PINNED_CRCS: dict[str, str] = {}
