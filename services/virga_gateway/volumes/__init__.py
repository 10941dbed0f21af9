"""Volumes: block devices of the storage service, their snapshots, and their attachments."""
