"""Reproduction of the Adap-τ paper (research; outside the adaptau_tf package)."""
