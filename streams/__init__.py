"""posguard: streaming anomaly detection for card-present POS payments.

``streams.engine`` decides alerts (pure, event time only); ``streams.replay`` and, later, the Faust
worker are thin drivers around it.
"""

__version__ = "0.1.0"
