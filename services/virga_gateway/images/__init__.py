"""Images: uploaded disk images that volumes and instances' boot volumes are cloned from."""
