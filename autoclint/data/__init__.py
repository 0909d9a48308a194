"""Reading AutoDL datasets and writing them from users' data."""
