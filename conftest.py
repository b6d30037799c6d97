import os

# scikit-learn runs its array-API check only when this is set before scipy is
# imported; conftest.py is imported before any test module.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
