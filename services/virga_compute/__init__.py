"""Virga's compute agent: runs the instances placed on one hypervisor host.

The driver layer (`drivers/`: `base`, `domain_xml`, `libvirt`, `memory`) is the part that
talks to the hypervisor; nothing outside it sees a libvirt object or a domain name.
"""
