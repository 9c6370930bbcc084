"""Rules: what each declares (``spec.py``), the registry (``registry.py``), their docs."""
