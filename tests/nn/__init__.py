"""Tests of tape.nn: modules, layers, losses and optimizers."""
