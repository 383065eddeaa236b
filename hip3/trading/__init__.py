"""Trading: the tracker (owner of positions), executor, exits, resync and hard stop."""
