"""`python -m virga_storage` runs the storage service."""

from virga_storage.main import main

if __name__ == "__main__":
    main()
