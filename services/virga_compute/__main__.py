"""`python -m virga_compute` runs this host's compute agent."""

from virga_compute.main import main

if __name__ == "__main__":
    main()
