"""Hand-written DOM rules for MiniWoB++ tasks, split by kind (see :mod:`parsimon.gui.policies.miniwob_rules`)."""
