"""attnad: batch anomaly detection with attention models."""
__version__ = "0.1.0"
