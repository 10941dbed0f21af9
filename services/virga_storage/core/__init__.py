"""The storage service's pure core: its model, fold and decisions, and the rules about
image formats; imports no Ceph, Kafka or HTTP code."""
