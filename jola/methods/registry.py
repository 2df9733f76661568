"""The method registry: name -> Method subclass."""

from jola.registry import Registry

METHODS: Registry = Registry("method")
