"""What the storage service's decisions ask for (`intents`) and the handlers that do it over a
`StorageDriver`."""
