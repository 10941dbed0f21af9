"""The layer that talks to the hypervisor: the `ComputeDriver` contract (`base`), the
in-process driver (`memory`), the libvirt driver (`libvirt`, `libvirt_domains`) and the
domain XML it writes (`domain_xml`, `guest_network`).

Nothing outside it sees a libvirt object or a domain name, except the name reported in an
`UnknownDomainFound`.
"""
