"""The stream driver: a Faust worker that feeds the engine from Kafka.

Pure parts (merging two topics on event time, the journal that makes state durable, the per
partition pipeline, the alert store) are plain Python and unit-tested without a broker; ``app``
wires them to Faust.
"""
