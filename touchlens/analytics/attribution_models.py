"""The attribution models by name, apart from their maths (numpy, SciPy), so the command line can offer them
without loading either."""

HEURISTICS = ("first", "last", "linear", "position")
MODELS = (*HEURISTICS, "markov", "shapley")
# Time-decay needs event times, so the workspace runs it in the engine; the rest take paths.
EVERY_MODEL = (*MODELS, "time-decay")
# Order k's states are k-grams of keys, so the chain grows as keysᵏ; each bootstrap resample reruns the model.
MAX_ORDER = 3
MAX_SAMPLES = 200
