"""SMP_BALR: measure how strongly a speech modality is present in BALR binary attributes."""

__version__ = "0.1.0"
