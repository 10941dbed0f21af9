"""`python -m virga_gateway` runs the gateway."""

from virga_gateway.main import main

main()
