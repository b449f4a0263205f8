"""Typed errors of key handling and negotiation.

Owns the error classes. Every message names the node, file or annotation
concerned and what is wrong with it, and never contains key material (not
even a prefix of it): a bad annotation is described by its length and
alphabet, a bad key file by its path and mode.
"""
from __future__ import annotations


class KeyNegotiationError(Exception):
    """Base of every error raised by ``ipsec``."""


class KeyFileError(KeyNegotiationError):
    """A private key file is unusable: wrong owner/permissions, corrupt, unreadable."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"private key file {path}: {problem}")


class BadPeerKey(KeyNegotiationError):
    """A peer's public key annotation is missing or malformed."""

    def __init__(self, node: str, annotation: str, problem: str):
        self.node = node
        self.annotation = annotation
        self.problem = problem
        super().__init__(f"node {node!r}: annotation {annotation}: {problem}")


class BadAnnotation(KeyNegotiationError):
    """A node annotation that drives encryption has a value we do not understand."""

    def __init__(self, node: str, annotation: str, problem: str):
        self.node = node
        self.annotation = annotation
        self.problem = problem
        super().__init__(f"node {node!r}: annotation {annotation}: {problem}")


class SpiCollision(KeyNegotiationError):
    """A derived SPI is already used by another SA on the receiving node."""

    def __init__(self, receiver: str, sender: str, spi: int):
        self.receiver = receiver
        self.sender = sender
        self.spi = spi
        super().__init__(f"SPI {spi:#010x} for {sender} -> {receiver} is already in use on {receiver}")
