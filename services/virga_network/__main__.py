"""`python -m virga_network` runs the network controller."""

from virga_network.main import main

if __name__ == "__main__":
    main()
