"""`python -m virga_scheduler` runs the scheduler service."""

from virga_scheduler.main import main

if __name__ == "__main__":
    main()
