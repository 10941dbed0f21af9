"""`python -m virga_network.agent` runs this host's network agent."""

from virga_network.agent.main import main

if __name__ == "__main__":
    main()
