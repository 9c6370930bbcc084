"""The isolation-forest model: features, training, the model file and its scorer.

Never imports Faust or Kafka: the engine and both drivers use it as plain Python.
"""
