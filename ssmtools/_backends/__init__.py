"""Third-party numerical backends (slycot, torch), imported lazily inside functions."""
