"""Guests a failed test left behind, found by the tag its stack wrote into their domains."""

from __future__ import annotations

import libvirt


def remove_tagged(uri: str, tag: str) -> None:
    """Destroy and undefine every Virga domain (`virga-*`) on `uri` whose XML holds `tag`."""
    connection = libvirt.open(uri)
    try:
        for domain in connection.listAllDomains():
            if domain.name().startswith("virga-") and tag in domain.XMLDesc(0):
                if domain.isActive():
                    domain.destroy()
                domain.undefine()
    finally:
        connection.close()
