"""`python -m virga_billing` runs the billing service."""

from virga_billing.main import main

if __name__ == "__main__":
    main()
